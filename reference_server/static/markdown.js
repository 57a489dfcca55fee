// A small Markdown renderer for the agent's analysis, safe by construction:
// every piece of text is HTML-escaped before any markup is added, so nothing a
// backend sends can inject elements or scripts. It covers what the analysis
// uses (headings, paragraphs, lists, quotes, bold, italic, inline code) and is
// re-run on the whole text at each chunk, so a half-written "**bold" simply
// shows as text until its end arrives.
(function (global) {
  "use strict";

  function escapeHtml(text) {
    return text.replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function inline(text) {
    var out = escapeHtml(text);
    out = out.replace(/`([^`]+)`/g, "<code>$1</code>");
    out = out.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
    out = out.replace(/(^|[\s(])_([^_]+)_(?=$|[\s).,;:])/g, "$1<em>$2</em>");
    return out;
  }

  function render(markdown) {
    var lines = markdown.split(/\r?\n/);
    var html = [];
    var list = false;
    var para = [];
    function flush() {
      if (para.length) { html.push("<p>" + inline(para.join(" ")) + "</p>"); para = []; }
      if (list) { html.push("</ul>"); list = false; }
    }
    lines.forEach(function (line) {
      var heading = /^(#{1,6})\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        var level = Math.min(6, heading[1].length + 1);  // the page has its own h1/h2
        html.push("<h" + level + ">" + inline(heading[2]) + "</h" + level + ">");
      } else if (/^\s*[-*]\s+/.test(line)) {
        if (para.length) { html.push("<p>" + inline(para.join(" ")) + "</p>"); para = []; }
        if (!list) { html.push("<ul>"); list = true; }
        html.push("<li>" + inline(line.replace(/^\s*[-*]\s+/, "")) + "</li>");
      } else if (/^>\s?/.test(line)) {
        flush();
        html.push("<blockquote>" + inline(line.replace(/^>\s?/, "")) + "</blockquote>");
      } else if (line.trim() === "") {
        flush();
      } else {
        if (list) { html.push("</ul>"); list = false; }
        para.push(line.trim());
      }
    });
    flush();
    return html.join("\n");
  }

  global.AgentMarkdown = { render: render, escapeHtml: escapeHtml };
})(window);
