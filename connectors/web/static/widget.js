/* Embeddable chat widget of the administrative-procedure assistant, for a provincial portal:
 *
 *   <script src="https://<assistant host>/widget.js" async></script>
 *
 * adds a round chat button at the bottom right that opens the chat page (<script's folder>/?embed=1) in a frame.
 * Everything lives in one shadow root, so the portal's styles and the widget's cannot touch each other; the
 * only global is window.VnaChatWidget ({open, close, toggle}).
 */
(function () {
  'use strict';

  if (window.VnaChatWidget) return; // included twice: keep the first

  var script = document.currentScript;
  if (!script) { // very old browsers: find ourselves by name
    var all = document.getElementsByTagName('script');
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js(\?|#|$)/.test(all[i].src)) { script = all[i]; break; }
    }
  }
  var base = script && script.src ? script.src : window.location.href;
  var chatUrl = new URL('./?embed=1', base).toString(); // https://host/widget.js -> https://host/?embed=1

  var TITLE = 'Trợ lý thủ tục hành chính';
  var OPEN_LABEL = 'Mở trợ lý thủ tục hành chính';
  var CLOSE_LABEL = 'Đóng trợ lý thủ tục hành chính';

  // Constant markup only (no text from the page, the citizen or the bot goes in here).
  var STYLE = [
    ':host { all: initial; }',
    '.launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 60px; height: 60px;',
    '  border: 0; border-radius: 50%; background: #1a4d8f; color: #fff; cursor: pointer; display: flex;',
    '  align-items: center; justify-content: center; box-shadow: 0 4px 14px rgba(0,0,0,.3); padding: 0; }',
    '.launcher:hover { background: #123a6d; }',
    '.launcher:focus-visible, .close:focus-visible { outline: 3px solid #f59e0b; outline-offset: 3px; }',
    '.launcher svg { width: 28px; height: 28px; }',
    '.launcher .icon-close { display: none; }',
    '.launcher[aria-expanded="true"] .icon-chat { display: none; }',
    '.launcher[aria-expanded="true"] .icon-close { display: block; }',
    '.panel { position: fixed; right: 20px; bottom: 92px; z-index: 2147483000; width: 380px;',
    '  max-width: calc(100vw - 24px); height: 600px; max-height: calc(100vh - 112px); display: flex;',
    '  flex-direction: column; background: #fff; border-radius: 16px; overflow: hidden;',
    '  box-shadow: 0 10px 40px rgba(0,0,0,.3); font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto,',
    '  "Noto Sans", Arial, sans-serif; }',
    '.panel[hidden] { display: none; }',
    '.bar { display: flex; align-items: center; gap: 8px; padding: 10px 8px 10px 14px; background: #1a4d8f;',
    '  color: #fff; border-bottom: 3px solid #c8102e; }',
    '.title { flex: 1; margin: 0; font-size: 15px; font-weight: 600; }',
    '.close { width: 36px; height: 36px; border: 0; border-radius: 8px; background: transparent; color: #fff;',
    '  font-size: 22px; line-height: 1; cursor: pointer; padding: 0; }',
    '.close:hover { background: rgba(255,255,255,.15); }',
    'iframe { flex: 1; width: 100%; border: 0; display: block; }',
    '@media (max-width: 480px) {',
    '  .panel { right: 0; bottom: 0; width: 100vw; max-width: none; height: 100%; max-height: none; border-radius: 0; }',
    '  .panel:not([hidden]) ~ .launcher { display: none; }',
    '}'
  ].join('\n');

  var host = document.createElement('div');
  host.setAttribute('data-vna-chat-widget', '');
  if (typeof host.attachShadow !== 'function') return; // no shadow DOM (very old browser): no widget
  var root = host.attachShadow({ mode: 'open' });

  var style = document.createElement('style');
  style.textContent = STYLE;

  var panel = document.createElement('div');
  panel.className = 'panel';
  panel.id = 'vna-chat-panel';
  panel.hidden = true;
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', TITLE);

  var bar = document.createElement('div');
  bar.className = 'bar';
  var title = document.createElement('p');
  title.className = 'title';
  title.textContent = TITLE;
  var close = document.createElement('button');
  close.type = 'button';
  close.className = 'close';
  close.setAttribute('aria-label', CLOSE_LABEL);
  close.textContent = '×';
  bar.appendChild(title);
  bar.appendChild(close);
  panel.appendChild(bar);

  var launcher = document.createElement('button');
  launcher.type = 'button';
  launcher.className = 'launcher';
  launcher.setAttribute('aria-label', OPEN_LABEL);
  launcher.setAttribute('aria-expanded', 'false');
  launcher.setAttribute('aria-controls', panel.id);
  launcher.title = OPEN_LABEL;
  launcher.appendChild(icon('icon-chat',
    'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6.5a1.5 1.5 0 1 0 0 ' +
    '.01zm5 0a1.5 1.5 0 1 0 0 .01zm5 0a1.5 1.5 0 1 0 0 .01z'));
  launcher.appendChild(icon('icon-close',
    'M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12l5.6 5.6-1.4 1.4L12 13.4 6.4 19 5 17.6l5.6-5.6L5 6.4z'));

  root.appendChild(style);
  root.appendChild(panel);
  root.appendChild(launcher);

  function icon(className, path) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', className);
    var p = document.createElementNS(ns, 'path');
    p.setAttribute('fill', 'currentColor');
    p.setAttribute('fill-rule', 'evenodd');
    p.setAttribute('d', path);
    svg.appendChild(p);
    return svg;
  }

  var frame = null;

  function open() {
    if (!frame) { // load the chat only when it is first wanted
      frame = document.createElement('iframe');
      frame.src = chatUrl;
      frame.title = TITLE;
      frame.setAttribute('allow', 'clipboard-write');
      panel.appendChild(frame);
    }
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    launcher.title = CLOSE_LABEL;
    frame.focus();
  }

  function closePanel() {
    var wasOpen = !panel.hidden;
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    launcher.title = OPEN_LABEL;
    if (wasOpen) launcher.focus();
  }

  function toggle() {
    if (panel.hidden) open(); else closePanel();
  }

  launcher.addEventListener('click', toggle);
  close.addEventListener('click', closePanel);
  panel.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') closePanel();
  });

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);

  window.VnaChatWidget = { open: open, close: closePanel, toggle: toggle };
})();
