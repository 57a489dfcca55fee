// Draws the result chart of a data_ready event as inline SVG, offline. The event
// carries a Vega-Lite v5 spec with its rows inline; rather than ship Vega (about
// 1 MB) this reads the two things the reference agent's specs use (a bar or a
// line mark, x and y fields) and draws them. Labels go in as text nodes, never
// as markup.
(function (global) {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function draw(container, spec) {
    container.textContent = "";
    var rows = (spec && spec.data && spec.data.values) || [];
    var enc = (spec && spec.encoding) || {};
    var xField = enc.x && enc.x.field, yField = enc.y && enc.y.field;
    if (!rows.length || !xField || !yField) {
      container.appendChild(document.createTextNode("No chart for this result."));
      return null;
    }
    var mark = typeof spec.mark === "string" ? spec.mark : (spec.mark && spec.mark.type) || "bar";
    var values = rows.map(function (r) { return Number(r[yField]) || 0; });
    var labels = rows.map(function (r) { return String(r[xField]); });
    var width = 560, height = 240, left = 48, bottom = 56, top = 24;
    var max = Math.max.apply(null, values.concat([0])) || 1;
    var plotW = width - left - 8, plotH = height - top - bottom;
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "class": "chart", "data-mark": mark });
    svg.appendChild(el("title", {}, spec.title || (yField + " by " + xField)));
    svg.appendChild(el("text", { x: left, y: 16, "class": "chart-title" }, spec.title || ""));
    svg.appendChild(el("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, "class": "axis" }));
    svg.appendChild(el("text", { x: left - 6, y: top + 4, "text-anchor": "end", "class": "tick" }, String(max)));
    svg.appendChild(el("text", { x: left - 6, y: top + plotH, "text-anchor": "end", "class": "tick" }, "0"));
    var step = plotW / values.length;
    var points = [];
    values.forEach(function (v, i) {
      var h = (v / max) * plotH, x = left + i * step, y = top + plotH - h;
      if (mark === "line") {
        points.push((x + step / 2) + "," + y);
        svg.appendChild(el("circle", { cx: x + step / 2, cy: y, r: 3, "class": "point" }));
      } else {
        var bar = el("rect", { x: x + step * 0.1, y: y, width: step * 0.8, height: h, "class": "bar" });
        bar.appendChild(el("title", {}, labels[i] + ": " + v));
        svg.appendChild(bar);
      }
      var label = el("text", { x: x + step / 2, y: top + plotH + 14, "text-anchor": "end", "class": "tick",
        transform: "rotate(-30 " + (x + step / 2) + " " + (top + plotH + 14) + ")" }, labels[i]);
      svg.appendChild(label);
    });
    if (points.length) svg.appendChild(el("polyline", { points: points.join(" "), "class": "line" }));
    container.appendChild(svg);
    return svg;
  }

  global.AgentChart = { draw: draw };
})(window);
