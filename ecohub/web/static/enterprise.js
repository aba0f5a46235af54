// Enterprise disclosure: a click on a monitoring point charts its hourly means for the
// 48 hours up to its newest value.
(function () {
  "use strict";
  const element = document.getElementById("chart-point");
  if (!element) return;
  const words = JSON.parse(element.dataset.words);
  const PARAMETERS = ["a21026", "a21002", "a34013", "a19001", "w01018", "w21003", "w01001"];
  const getJSON = (path, params) =>
    fetch(path + "?" + new URLSearchParams(params)).then((r) => (r.ok ? r.json() : Promise.reject(r.status)));

  function show(point) {
    document.getElementById("point-title").textContent = point;
    const end = new Date(Date.now() + 3600e3).toISOString();
    const start = new Date(Date.now() - 48 * 3600e3).toISOString();
    Promise.all(PARAMETERS.map((code) =>
      getJSON("/api/v1/points/" + encodeURIComponent(point) + "/series", {
        parameter: code, start, end, period: "hour", limit: 1000,
      }).then((data) => [code, data.rows]).catch(() => [code, []])
    )).then((results) => {
      const chart = echarts.getInstanceByDom(element) || echarts.init(element);
      const series = results.filter(([, rows]) => rows.length).map(([code, rows]) => ({
        type: "line", name: code, showSymbol: false, data: rows.map((row) => [row.ts, row.value]),
      }));
      chart.setOption({
        animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
        grid: { left: 48, right: 16, top: 36, bottom: 40 },
        xAxis: { type: "time" }, yAxis: { type: "value" }, series,
        graphic: series.length ? [] : [{ type: "text", left: "center", top: "middle", style: { text: words.no_data } }],
      }, true);
      element.dataset.ready = "yes";
    });
  }

  const buttons = document.querySelectorAll("button.point");
  buttons.forEach((button) => button.addEventListener("click", () => show(button.dataset.point)));
  if (buttons.length) show(buttons[0].dataset.point);
})();
