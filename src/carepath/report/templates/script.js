(function () {
  var drawn = 0;
  document.querySelectorAll('svg.chart').forEach(function (s) {
    if (s.querySelector('.mark')) { drawn++; s.setAttribute('data-drawn', '1'); }
  });
  document.body.setAttribute('data-charts-drawn', String(drawn));
  window.addEventListener('beforeprint', function () {
    document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  });
})();
