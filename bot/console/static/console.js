/* The staff console's small script (the pages work without it): procedure search as one types, confirmations,
 * filters that apply on change. Text from the server is put into the page with textContent only. */
(function () {
  'use strict';

  // Forms that ask first ("Ngừng dùng câu hỏi số 3?")
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (e) {
      if (!window.confirm(form.getAttribute('data-confirm'))) e.preventDefault();
    });
  });

  // Filters that apply as soon as they change
  document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
    select.addEventListener('change', function () { if (select.form) select.form.submit(); });
  });

  // Procedure pickers: search /console/api/procedures while typing, show the hits as radio buttons
  document.querySelectorAll('[data-picker]').forEach(function (picker) {
    var search = picker.querySelector('[data-picker-search]');
    var results = picker.querySelector('[data-picker-results]');
    var status = picker.querySelector('[data-picker-status]');
    if (!search || !results) return;
    var field = results.getAttribute('data-field');
    var required = results.getAttribute('data-required') === 'true';
    var timer = null;
    var seq = 0;

    function choice(code, title, checked) {
      var label = document.createElement('label');
      label.className = 'choice';
      var input = document.createElement('input');
      input.type = 'radio';
      input.name = field;
      input.value = code;
      input.checked = checked;
      if (required) input.required = true;
      label.appendChild(input);
      label.appendChild(document.createTextNode(' ' + title + ' '));
      if (code) {
        var span = document.createElement('span');
        span.className = 'code';
        span.textContent = code;
        label.appendChild(span);
      }
      return label;
    }

    function show(items, query) {
      var checked = results.querySelector('input[type=radio]:checked');
      var keep = checked && checked.value ? { code: checked.value, title: checked.parentNode.textContent.trim() } : null;
      results.querySelectorAll('label.choice').forEach(function (l) { l.remove(); });
      if (!required) results.insertBefore(choice('', 'Không gắn thủ tục', !keep), status);
      var codes = items.map(function (p) { return p.code; });
      if (keep && codes.indexOf(keep.code) === -1) {
        // the chosen one stays chosen; its title already ends with its code
        var kept = choice(keep.code, keep.title.replace(new RegExp('\\s*' + keep.code.replace(/\./g, '\\.') + '$'), ''), true);
        results.insertBefore(kept, status);
      }
      items.forEach(function (p) {
        results.insertBefore(choice(p.code, p.title, keep !== null && keep.code === p.code), status);
      });
      if (status) {
        status.textContent = !query ? '' : items.length ? 'Tìm thấy ' + items.length + ' thủ tục.'
          : 'Không tìm thấy thủ tục nào khớp “' + query + '”.';
      }
    }

    function run() {
      var query = search.value.trim();
      var mine = ++seq;
      if (!query) { show([], ''); return; }
      fetch('/console/api/procedures?q=' + encodeURIComponent(query), { credentials: 'same-origin', headers: { Accept: 'application/json' } })
        .then(function (res) { if (!res.ok) throw new Error(String(res.status)); return res.json(); })
        .then(function (data) { if (mine === seq) show(Array.isArray(data.items) ? data.items : [], query); })
        .catch(function () { /* the search button still works without the script's help */ });
    }

    search.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(run, 200);
    });
    search.addEventListener('keydown', function (e) {
      if (e.key === 'Enter') { e.preventDefault(); clearTimeout(timer); run(); }
    });
  });
})();
