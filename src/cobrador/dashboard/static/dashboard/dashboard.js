// The dashboard's small helpers: the organization picker navigates, and the charts' bars and points
// show their <title> at once in a tip (the browser's own tooltip is slow to appear). No library.
(function () {
  "use strict";
  var select = document.getElementById("organization-select");
  if (select) {
    select.addEventListener("change", function () {
      window.location.href = select.getAttribute("data-base") + encodeURIComponent(select.value) + "/" + window.location.search;
    });
  }
  var tip = document.createElement("div");
  tip.id = "chart-tip";
  document.body.appendChild(tip);
  var marks = document.querySelectorAll("svg.chart rect, svg.chart circle");
  Array.prototype.forEach.call(marks, function (mark) {
    var title = mark.querySelector("title");
    if (!title) { return; }
    mark.addEventListener("mouseenter", function () {
      mark.classList.add("hover");
      tip.textContent = title.textContent;
      tip.style.display = "block";
    });
    mark.addEventListener("mousemove", function (event) {
      tip.style.left = (event.clientX + 12) + "px";
      tip.style.top = (event.clientY + 12) + "px";
    });
    mark.addEventListener("mouseleave", function () {
      mark.classList.remove("hover");
      tip.style.display = "none";
    });
  });
  document.documentElement.setAttribute("data-dashboard-ready", String(document.querySelectorAll("svg.chart").length));
}());
