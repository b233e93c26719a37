/* The web chat page's script: sends the citizen's questions to POST /api/chat and ratings to POST /api/rating,
 * and renders the answers (source links, a compact card of the procedure's fields from the reply's structured
 * `answer`, option buttons, star ratings). The conversation's id is issued and signed
 * by the server (POST /api/session, "web:<random>.<signature>") and kept in localStorage: nobody can pick or guess
 * the id of someone else's web conversation. While the page is visible it also asks
 * GET /api/messages every 10 s for replies a staff member wrote in the console to this conversation (after a
 * handover), and shows them as "Nhân viên hỗ trợ" messages. Plain browser JavaScript, no build step.
 *
 * Safety rule: every text that comes from the citizen or the bot is put into the page with textContent (or
 * as an attribute value), never as markup, so "<script>" or "<img onerror=…>" typed by anyone shows as text.
 */
(function () {
  'use strict';

  var MAX_CHARS = 2000;
  var COUNTER_FROM = 1800; // show the character counter from here on
  var REQUEST_TIMEOUT_MS = 60000;
  var MAX_SOURCE_LINKS = 2;
  var SESSION_KEY = 'vna.chat.session';
  var TRANSCRIPT_KEY = 'vna.chat.transcript';
  var TRANSCRIPT_LIMIT = 60; // messages kept for redisplay after a reload
  var STAFF_AFTER_KEY = 'vna.chat.staff.after'; // {session, after}: the last staff reply shown
  var STAFF_POLL_MS = 10000;
  var HANDOFF_RE = /mã yêu cầu\s*#\d+/i; // the reply that says a ticket was opened for a person
  var EXAMPLES = ['Làm lại căn cước ở đâu?', 'Lệ phí đăng ký khai sinh?', 'Đăng ký thường trú cần giấy tờ gì?'];

  var TEXT = {
    greeting: 'Xin chào! Mình là trợ lý thủ tục hành chính. Bạn cần làm giấy tờ gì? Mình có thể cho biết ' +
      'hồ sơ cần chuẩn bị, nơi nộp, lệ phí và thời gian giải quyết. Bạn có thể hỏi, ví dụ:',
    examplesLabel: 'Câu hỏi gợi ý',
    optionsLabel: 'Các lựa chọn',
    source: 'Nguồn: ',
    rateQuestion: 'Câu trả lời này có hữu ích không?',
    rateThanks: 'Cảm ơn bạn đã đánh giá!',
    rateFailed: 'Chưa gửi được đánh giá, bạn vui lòng thử lại.',
    rateRequestLabel: 'Chọn số sao để đánh giá',
    stars: function (n) { return n + ' sao'; },
    retry: 'Thử lại',
    errorNetwork: 'Xin lỗi, mình chưa kết nối được tới hệ thống. Bạn kiểm tra kết nối mạng rồi bấm “Thử lại” nhé.',
    errorTimeout: 'Xin lỗi, hệ thống phản hồi quá lâu. Bạn vui lòng bấm “Thử lại” sau ít phút.',
    errorTooLarge: 'Tin nhắn quá dài. Bạn vui lòng rút gọn câu hỏi rồi gửi lại.',
    errorInvalid: 'Xin lỗi, hệ thống chưa đọc được tin nhắn này. Bạn vui lòng kiểm tra lại nội dung rồi gửi lại.',
    errorServer: 'Xin lỗi, hệ thống đang gặp sự cố tạm thời. Bạn vui lòng bấm “Thử lại” sau ít phút.',
    errorTooMany: function (seconds) {
      return 'Bạn gửi hơi nhanh. Vui lòng đợi ' + seconds + ' giây rồi bấm “Thử lại”.';
    },
    linkNewTab: ' (mở trong thẻ mới)',
    staff: 'Nhân viên hỗ trợ',
    card: 'Tóm tắt thủ tục',
    code: function (code) { return 'mã ' + code; },
    cardWhere: 'Cấp thực hiện',
    cardPlace: 'Địa bàn hiện nay',
    cardPlaceOpen: 'chưa xác định được (xem câu trả lời)',
    cardFee: 'Phí, lệ phí',
    cardTime: 'Thời hạn',
    cardDocuments: 'Hồ sơ',
    documents: function (n) { return n + ' loại giấy tờ'; },
    cardOnline: 'Nộp trực tuyến',
    onlineYes: 'Có',
    onlineNo: 'Hồ sơ không ghi',
    notGiven: 'Hồ sơ không ghi',
    levels: { commune: 'cấp xã', province: 'cấp tỉnh', central: 'cấp trung ương', other: 'cơ quan khác' }
  };
  var CARD_VALUES = 2; // per-channel values shown in a card row (fee, time)
  var CARD_CHARS = 80; // a value longer than this is cut (the reply and the source have it whole)

  var logEl = document.getElementById('log');
  var scroller = document.getElementById('scroller');
  var typingEl = document.getElementById('typing');
  var form = document.getElementById('composer');
  var input = document.getElementById('input');
  var sendBtn = document.getElementById('send');
  var counter = document.getElementById('counter');
  var newChatBtn = document.getElementById('new-chat');

  var pending = false;
  var generation = 0; // bumped by "new conversation": answers to an older conversation are dropped
  var idSeq = 0;

  // ---- storage (localStorage may be unavailable, e.g. in a third-party frame): fall back to memory ----
  var memory = {};
  var storage = {
    get: function (key) {
      if (Object.prototype.hasOwnProperty.call(memory, key)) return memory[key];
      try { return window.localStorage.getItem(key); } catch (e) { return null; }
    },
    set: function (key, value) {
      try { window.localStorage.setItem(key, value); delete memory[key]; } catch (e) { memory[key] = value; }
    },
    remove: function (key) {
      delete memory[key];
      try { window.localStorage.removeItem(key); } catch (e) { /* nothing stored there */ }
    }
  };

  // ---- the conversation's id: issued and signed by the server, kept across reloads ----
  var SESSION_RE = /^web:[A-Za-z0-9_-]{8,64}\.[A-Za-z0-9_-]{20,100}$/;
  var sessionId = null;
  var sessionRequest = null; // the pending POST /api/session, shared by everyone waiting for an id

  // An id from this server, or the transcript of an older page version's conversation (which the server no
  // longer accepts) is dropped with it.
  function storedSession() {
    var id = storage.get(SESSION_KEY);
    if (typeof id === 'string' && SESSION_RE.test(id)) return id;
    storage.remove(SESSION_KEY);
    storage.remove(TRANSCRIPT_KEY);
    storage.remove(STAFF_AFTER_KEY);
    return null;
  }

  // Resolves to the conversation's id, asking the server for a new one when there is none yet.
  function ensureSession() {
    if (sessionId) return Promise.resolve(sessionId);
    if (!sessionRequest) {
      var gen = generation;
      var request = postJSON('api/session', {}).then(function (data) {
        var id = data && typeof data.session_id === 'string' ? data.session_id : '';
        if (!SESSION_RE.test(id)) throw new HttpError(502);
        if (gen === generation) {
          sessionId = id;
          storage.set(SESSION_KEY, id);
        }
        return id;
      });
      sessionRequest = request;
      request.then(function () {
        if (sessionRequest === request) sessionRequest = null;
      }, function () {
        if (sessionRequest === request) sessionRequest = null;
      });
    }
    return sessionRequest;
  }

  function forgetSession() {
    sessionId = null;
    sessionRequest = null;
    storage.remove(SESSION_KEY);
  }

  // call(id) with the conversation's id; when the server refuses the id (403: e.g. the deployment's secret
  // changed), once more with a new one.
  function withSession(call) {
    return ensureSession().then(function (id) {
      return call(id).then(null, function (err) {
        if (err instanceof HttpError && err.status === 403 && id === sessionId) {
          forgetSession();
          return ensureSession().then(call);
        }
        throw err;
      });
    });
  }

  sessionId = storedSession();

  // ---- transcript kept for a reload (text and source links only; buttons are not replayed) ----
  function loadTranscript() {
    try {
      var items = JSON.parse(storage.get(TRANSCRIPT_KEY) || '[]');
      return Array.isArray(items) ? items : [];
    } catch (e) {
      return [];
    }
  }

  function remember(item) {
    var items = loadTranscript();
    items.push(item);
    if (items.length > TRANSCRIPT_LIMIT) items = items.slice(items.length - TRANSCRIPT_LIMIT);
    storage.set(TRANSCRIPT_KEY, JSON.stringify(items));
  }

  // ---- DOM helpers ----
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function button(className, text, label) {
    var b = el('button', className, text);
    b.type = 'button';
    if (label) b.setAttribute('aria-label', label);
    return b;
  }

  function isWebUrl(url) {
    return typeof url === 'string' && /^https?:\/\/[^\s]+$/i.test(url);
  }

  function link(url, text) {
    var a = el('a', null, text);
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.title = url;
    a.appendChild(el('span', 'visually-hidden', TEXT.linkNewTab));
    return a;
  }

  // Text with its web addresses made clickable; built from text nodes and <a> elements only.
  function fillText(node, text) {
    var re = /https?:\/\/[^\s<>"]+/g;
    var last = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      var url = m[0].replace(/[.,;:!?)\]]+$/, '');
      if (m.index > last) node.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = el('a', null, url);
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      node.appendChild(a);
      last = m.index + url.length;
      re.lastIndex = last;
    }
    if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
  }

  function scrollToMessage(msg, alignTop) {
    if (alignTop && msg.offsetHeight > scroller.clientHeight * 0.7) {
      scroller.scrollTop = msg.offsetTop - 8; // a long answer: show its beginning
    } else {
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  function addMessage(msg) {
    logEl.appendChild(msg);
    return msg;
  }

  // ---- messages ----
  function renderUser(text) {
    var msg = el('div', 'msg msg-user');
    msg.appendChild(el('div', 'bubble', text));
    addMessage(msg);
    scrollToMessage(msg, false);
    return msg;
  }

  // Sources to show as links: the ones the reply cites (their address is in the text), else the best ones.
  function sourceLinks(data) {
    if (data.fallback) return []; // a guess, not an answer: the options say what it might be
    var withUrl = (Array.isArray(data.sources) ? data.sources : []).filter(function (s) {
      return s && isWebUrl(s.url) && typeof s.title === 'string';
    });
    var reply = typeof data.reply === 'string' ? data.reply : '';
    var cited = withUrl.filter(function (s) { return reply.indexOf(s.url) !== -1; });
    var chosen = [];
    (cited.length ? cited : withUrl).forEach(function (s) {
      if (chosen.length < MAX_SOURCE_LINKS && !chosen.some(function (c) { return c.url === s.url; })) chosen.push(s);
    });
    return chosen.map(function (s) { return { title: s.title, url: s.url }; });
  }

  // The reply without its "Nguồn: … — https://…" line(s) when the links below the bubble say the same.
  function replyText(reply, links) {
    var urls = links.map(function (l) { return l.url; });
    return reply.split('\n').filter(function (line) {
      if (!/^Nguồn:/.test(line)) return true;
      var found = line.match(/https?:\/\/[^\s<>"]+/g);
      if (!found) return true;
      return !found.every(function (u) { return urls.indexOf(u.replace(/[.,;:!?)\]]+$/, '')) !== -1; });
    }).join('\n').replace(/\s+$/, '');
  }

  function renderSources(msg, links) {
    if (!links.length) return;
    var list = el('ul', 'sources');
    links.forEach(function (s) {
      var li = el('li');
      li.appendChild(link(s.url, TEXT.source + s.title));
      list.appendChild(li);
    });
    msg.appendChild(list);
  }

  // ---- the compact card: the procedure's fields as the reply's structured `answer` gives them ----
  function cardRow(list, label, value) {
    if (value == null || value === '') return;
    list.appendChild(el('dt', null, label));
    list.appendChild(el('dd', null, value));
  }

  function channelValues(values) {
    if (!Array.isArray(values) || !values.length) return TEXT.notGiven;
    function clip(v) {
      var value = String(v && v.value || '');
      return value.length > CARD_CHARS ? value.slice(0, CARD_CHARS).replace(/\s+\S*$/, '') + '…' : value;
    }
    var same = values.every(function (v) { return clip(v) === clip(values[0]); });
    if (same) return clip(values[0]); // one value for every way of submitting
    var shown = values.slice(0, CARD_VALUES).map(function (v) { return (v && v.label ? v.label + ': ' : '') + clip(v); });
    return shown.join('; ') + (values.length > CARD_VALUES ? '; …' : '');
  }

  function answerCard(answer) {
    if (!answer || typeof answer !== 'object' || typeof answer.procedure !== 'string' || !answer.fields) return null;
    var f = answer.fields;
    var card = el('section', 'answer-card');
    card.setAttribute('aria-label', TEXT.card);
    var head = el('p', 'card-title', String(answer.title || ''));
    head.appendChild(el('span', 'card-code', ' (' + TEXT.code(answer.procedure) + ')'));
    card.appendChild(head);
    var list = el('dl');
    var where = f.where && Array.isArray(f.where.levels) ? f.where.levels.map(function (l) {
      return TEXT.levels[l] || l;
    }).join(', ') : '';
    cardRow(list, TEXT.cardWhere, where || TEXT.notGiven);
    var place = answer.place;
    if (place && typeof place === 'object') cardRow(list, TEXT.cardPlace, place.now || TEXT.cardPlaceOpen);
    cardRow(list, TEXT.cardFee, channelValues(f.fee));
    cardRow(list, TEXT.cardTime, channelValues(f.time));
    cardRow(list, TEXT.cardDocuments, Array.isArray(f.documents) ? TEXT.documents(f.documents.length) : TEXT.notGiven);
    cardRow(list, TEXT.cardOnline, f.online === true ? TEXT.onlineYes : TEXT.onlineNo);
    card.appendChild(list);
    if (isWebUrl(answer.url)) {
      var source = link(answer.url, TEXT.source + String(answer.title || answer.procedure));
      source.className = 'card-source';
      card.appendChild(source);
    }
    return card;
  }

  function renderBot(data, live) {
    var links = sourceLinks(data);
    var reply = typeof data.reply === 'string' ? data.reply : '';
    var msg = el('div', 'msg msg-bot' + (data.fallback ? ' msg-fallback' : ''));
    var bubble = el('div', 'bubble');
    fillText(bubble, replyText(reply, links) || reply);
    msg.appendChild(bubble);
    var card = data.fallback ? null : answerCard(data.answer);
    if (card) {
      msg.appendChild(card);
      // the card carries the answered record's link: list only the other sources
      renderSources(msg, links.filter(function (l) { return l.url !== data.answer.url; }));
    } else {
      renderSources(msg, links);
    }

    var rateButtons = [];
    var optionButtons = [];
    if (live && Array.isArray(data.buttons)) {
      data.buttons.forEach(function (b) {
        if (!b || typeof b.title !== 'string' || typeof b.payload !== 'string') return;
        (/^\/rate\b/.test(b.payload) ? rateButtons : optionButtons).push(b);
      });
    }
    if (optionButtons.length) msg.appendChild(optionGroup(optionButtons));
    if (rateButtons.length) {
      msg.appendChild(rateRequest(rateButtons));
    } else if (live && !data.fallback && links.length) {
      msg.appendChild(answerRating());
    }
    addMessage(msg);
    scrollToMessage(msg, true);
    return msg;
  }

  // A staff member's reply (from the console): text only, labelled so the citizen knows a person wrote it.
  function renderStaff(text) {
    var msg = el('div', 'msg msg-bot msg-staff');
    msg.appendChild(el('p', 'rating staff-label', TEXT.staff));
    msg.appendChild(el('div', 'bubble', text));
    addMessage(msg);
    scrollToMessage(msg, true);
    return msg;
  }

  function renderGreeting() {
    var msg = el('div', 'msg msg-bot msg-greeting');
    msg.appendChild(el('div', 'bubble', TEXT.greeting));
    var chips = el('div', 'choices examples');
    chips.setAttribute('role', 'group');
    chips.setAttribute('aria-label', TEXT.examplesLabel);
    EXAMPLES.forEach(function (q) {
      var chip = button('chip', q);
      chip.addEventListener('click', function () { send(q, q); });
      chips.appendChild(chip);
    });
    msg.appendChild(chips);
    addMessage(msg);
  }

  function renderError(message, retry) {
    var msg = el('div', 'msg msg-bot msg-error');
    msg.appendChild(el('div', 'bubble', message));
    if (retry) {
      var again = button('retry', TEXT.retry);
      again.addEventListener('click', function () { retry(msg); });
      var box = el('div', 'choices');
      box.appendChild(again);
      msg.appendChild(box);
    }
    addMessage(msg);
    scrollToMessage(msg, false);
    return msg;
  }

  // ---- option buttons (a clarification: which procedure?) ----
  function optionGroup(buttons) {
    var group = el('div', 'choices options');
    group.setAttribute('role', 'group');
    group.setAttribute('aria-label', TEXT.optionsLabel);
    var all = buttons.map(function (b) {
      var btn = button('option', b.title);
      btn.addEventListener('click', function () {
        if (pending || btn.disabled) return;
        setDisabled(all, true);
        btn.classList.add('chosen');
        btn.setAttribute('aria-pressed', 'true');
        send(b.payload, b.title).then(function (ok) {
          if (!ok) { // let the citizen choose again
            setDisabled(all, false);
            btn.classList.remove('chosen');
            btn.removeAttribute('aria-pressed');
          }
        });
      });
      group.appendChild(btn);
      return btn;
    });
    return group;
  }

  function setDisabled(buttons, disabled) {
    buttons.forEach(function (b) { b.disabled = disabled; });
  }

  // ---- stars ----
  function starControl(labelText, onPick) {
    var box = el('div', 'rating');
    var labelId = 'rating-label-' + (++idSeq);
    var label = el('p', 'rating-label', labelText);
    label.id = labelId;
    var stars = el('div', 'stars');
    stars.setAttribute('role', 'group');
    stars.setAttribute('aria-labelledby', labelId);
    var all = [];
    for (var n = 1; n <= 5; n++) {
      var star = button('star', '★', TEXT.stars(n));
      star.title = TEXT.stars(n);
      star.setAttribute('data-score', String(n));
      all.push(star);
      stars.appendChild(star);
    }
    all.forEach(function (star, i) {
      star.addEventListener('click', function () {
        if (star.disabled) return;
        onPick(i + 1, {
          lock: function () {
            setDisabled(all, true);
            all.forEach(function (s, j) { s.classList.toggle('on', j <= i); });
          },
          unlock: function () {
            setDisabled(all, false);
            all.forEach(function (s) { s.classList.remove('on'); });
          }
        });
      });
    });
    box.appendChild(label);
    box.appendChild(stars);
    return box;
  }

  // "Was this answer useful?" under an answer: POST /api/rating, then a thank-you.
  function answerRating() {
    var box = starControl(TEXT.rateQuestion, function (score, stars) {
      stars.lock();
      var note = box.querySelector('.rating-note');
      if (note) note.remove();
      withSession(function (id) {
        return postJSON('api/rating', { session_id: id, score: score, channel: 'web' });
      }).then(function () {
        var done = el('p', 'rating-done', TEXT.rateThanks);
        done.setAttribute('role', 'status');
        done.tabIndex = -1;
        var hadFocus = box.contains(document.activeElement);
        box.replaceWith(done);
        if (hadFocus) done.focus(); // keep a keyboard user's place
      }, function () {
        stars.unlock();
        box.appendChild(el('p', 'rating-note', TEXT.rateFailed));
      });
    });
    return box;
  }

  // The bot asked for a rating (buttons with /rate payloads): a star is an answer sent through /api/chat.
  function rateRequest(buttons) {
    var byScore = {};
    buttons.forEach(function (b) {
      var m = b.payload.match(/"score"\s*:\s*"?([1-5])/) || b.title.match(/^\s*([1-5])\b/);
      if (m && !byScore[m[1]]) byScore[m[1]] = b;
    });
    if (!Object.keys(byScore).length) return optionGroup(buttons); // not a form we know: plain buttons
    return starControl(TEXT.rateRequestLabel, function (score, stars) {
      var b = byScore[String(score)];
      if (pending) return;
      stars.lock();
      var ok = b ? send(b.payload, b.title) : send(String(score), TEXT.stars(score));
      ok.then(function (sent) { if (!sent) stars.unlock(); });
    });
  }

  // ---- talking to the API ----
  function HttpError(status, retryAfter) {
    this.status = status;
    this.retryAfter = retryAfter; // seconds, from a 429's Retry-After
  }

  function postJSON(path, body) {
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : null;
    var url = new URL(path, document.baseURI).toString();
    return fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
      signal: controller ? controller.signal : undefined
    }).then(function (res) {
      if (!res.ok) throw new HttpError(res.status, parseInt(res.headers.get('Retry-After') || '', 10) || null);
      return res.json();
    }).then(function (data) {
      clearTimeout(timer);
      return data;
    }, function (err) {
      clearTimeout(timer);
      throw err;
    });
  }

  function errorMessage(err) {
    if (err instanceof HttpError) {
      if (err.status === 413) return { text: TEXT.errorTooLarge, retry: false };
      if (err.status === 422 || err.status === 400) return { text: TEXT.errorInvalid, retry: false };
      if (err.status === 429) return { text: TEXT.errorTooMany(Math.min(err.retryAfter || 10, 3600)), retry: true };
      return { text: TEXT.errorServer, retry: true };
    }
    if (err && err.name === 'AbortError') return { text: TEXT.errorTimeout, retry: true };
    return { text: TEXT.errorNetwork, retry: true };
  }

  function setPending(on) {
    pending = on;
    typingEl.hidden = !on;
    logEl.setAttribute('aria-busy', on ? 'true' : 'false');
    updateSendButton();
    if (on) scroller.scrollTop = scroller.scrollHeight;
  }

  function updateSendButton() {
    sendBtn.disabled = pending || !input.value.trim();
  }

  // A new id for each message, sent again with its retries: the server answers a retried message once
  // (its first answer comes back if the first attempt was answered after all).
  function newMessageId() {
    var bytes = new Uint8Array(12);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  // Send `text` (a question, or a button's payload) showing `shown` as the citizen's bubble; `messageId` is
  // given when retrying. Resolves to true once answered, false if it was not sent or failed.
  function send(text, shown, fromInput, messageId) {
    var clean = String(text || '').trim();
    if (pending || !clean) return Promise.resolve(false);
    var gen = generation;
    var userMsg = renderUser(shown || clean);
    var mid = messageId || newMessageId();
    setPending(true);
    return withSession(function (id) {
      return postJSON('api/chat', { session_id: id, text: clean, channel: 'web', message_id: mid });
    }).then(function (data) {
      if (gen !== generation) return false;
      data = data && typeof data === 'object' ? data : {};
      setPending(false);
      renderBot(data, true);
      var links = sourceLinks(data);
      remember({ who: 'user', text: shown || clean });
      remember({ who: 'bot', text: replyText(String(data.reply || ''), links), sources: links });
      if (HANDOFF_RE.test(String(data.reply || ''))) pollStaff();
      return true;
    }, function (err) {
      if (gen !== generation) return false;
      setPending(false);
      userMsg.classList.add('msg-failed');
      if (fromInput && !input.value.trim()) { // never lose what the citizen typed
        input.value = text;
        onInput();
      }
      var problem = errorMessage(err);
      renderError(problem.text, problem.retry ? function (errorMsg) {
        if (pending) return;
        errorMsg.remove();
        userMsg.remove();
        if (fromInput && input.value === text) { input.value = ''; onInput(); }
        send(text, shown, fromInput, mid);
      } : null);
      return false;
    });
  }

  // ---- staff replies (a person answering a handed-over conversation from the console) ----
  var polling = false;

  function staffAfter() {
    try {
      var saved = JSON.parse(storage.get(STAFF_AFTER_KEY) || 'null');
      return saved && saved.session === sessionId && typeof saved.after === 'number' ? saved.after : 0;
    } catch (e) {
      return 0;
    }
  }

  function pollStaff() {
    // nothing to ask before the conversation started, and nothing while the page is hidden
    if (polling || !sessionId || document.visibilityState === 'hidden' || !loadTranscript().length) return;
    polling = true;
    var gen = generation;
    var url = new URL('api/messages', document.baseURI);
    url.searchParams.set('session_id', sessionId);
    url.searchParams.set('after', String(staffAfter()));
    fetch(url.toString(), { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (res) {
        if (!res.ok) throw new HttpError(res.status);
        return res.json();
      })
      .then(function (items) {
        if (gen !== generation || !Array.isArray(items)) return;
        var after = staffAfter();
        items.forEach(function (m) {
          if (!m || typeof m.id !== 'number' || typeof m.text !== 'string' || m.id <= after) return;
          renderStaff(m.text);
          remember({ who: 'staff', text: m.text });
          after = m.id;
        });
        storage.set(STAFF_AFTER_KEY, JSON.stringify({ session: sessionId, after: after }));
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { polling = false; });
  }

  setInterval(pollStaff, STAFF_POLL_MS);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') pollStaff();
  });

  // ---- composer ----
  function autoGrow() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 160) + 'px';
  }

  function onInput() {
    var len = input.value.length;
    if (len >= COUNTER_FROM) {
      counter.hidden = false;
      counter.textContent = len + '/' + MAX_CHARS;
      counter.classList.toggle('full', len >= MAX_CHARS);
    } else if (!counter.hidden) {
      counter.hidden = true;
      counter.textContent = '';
    }
    autoGrow();
    updateSendButton();
  }

  function submitInput() {
    var text = input.value;
    if (pending || !text.trim()) return;
    input.value = '';
    onInput();
    send(text, null, true);
  }

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    submitInput();
  });

  input.addEventListener('keydown', function (e) {
    // Enter sends, Shift+Enter breaks the line; an IME still composing (Telex, VNI…) keeps its Enter.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitInput();
    }
  });

  input.addEventListener('input', onInput);

  newChatBtn.addEventListener('click', function () {
    generation++;
    forgetSession();
    ensureSession().then(null, function () { /* asked again with the first message */ });
    storage.remove(TRANSCRIPT_KEY);
    storage.remove(STAFF_AFTER_KEY);
    setPending(false);
    logEl.textContent = '';
    renderGreeting();
    input.value = '';
    onInput();
    input.focus();
  });

  // ---- start ----
  // (index.html sets this before the first paint; repeated here in case inline scripts are not allowed)
  if (new URLSearchParams(window.location.search).get('embed') === '1') {
    document.documentElement.classList.add('embed');
  }
  renderGreeting();
  loadTranscript().forEach(function (item) {
    if (!item || typeof item.text !== 'string') return;
    if (item.who === 'user') {
      renderUser(item.text);
    } else if (item.who === 'staff') {
      renderStaff(item.text);
    } else {
      renderBot({ reply: item.text, sources: Array.isArray(item.sources) ? item.sources : [], fallback: false }, false);
    }
  });
  onInput();
  scroller.scrollTop = scroller.scrollHeight;
  ensureSession().then(pollStaff, function () { /* offline: asked again with the first message */ });
})();
