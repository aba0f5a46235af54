// Enterprise disclosure: a click on a monitoring point charts its hourly means for the
// 48 hours up to its newest value, each series named in the page's language with its
// unit, the permit's concentration limit drawn as a dashed line, and symbols where a
// series is sparse.
(function () {
  "use strict";
  const element = document.getElementById("chart-point");
  if (!element) return;
  const words = JSON.parse(element.dataset.words);
  const limits = JSON.parse(element.dataset.limits || "{}");
  const english = element.dataset.lang === "en";
  const PARAMETERS = ["a21026", "a21002", "a34013", "a19001", "w01018", "w21003", "w01001"];
  const getJSON = (path, params) =>
    fetch(path + "?" + new URLSearchParams(params)).then((r) => (r.ok ? r.json() : Promise.reject(r.status)));
  const names = getJSON("/api/v1/parameters", {})
    .then((rows) => new Map(rows.map((row) => [row.code, english ? row.name_en : row.name_zh])))
    .catch(() => new Map());

  function show(point, outlet) {
    document.getElementById("point-title").textContent = point;
    const permitted = limits[outlet] || {};
    Promise.all([names, ...PARAMETERS.map((code) =>
      // No range: the API answers the 48 hours up to the point's newest value.
      getJSON("/api/v1/points/" + encodeURIComponent(point) + "/series", {
        parameter: code, period: "hour", limit: 1000,
      }).then((data) => [code, data]).catch(() => [code, { rows: [] }])
    )]).then(([named, ...results]) => {
      const chart = echarts.getInstanceByDom(element) || echarts.init(element);
      const series = results.filter(([, data]) => data.rows.length).map(([code, data]) => {
        const unit = data.unit ? " (" + data.unit + ")" : "";
        const limit = permitted[code];
        return {
          type: "line",
          name: (named.get(code) || code) + unit,
          showSymbol: data.rows.length < 60,
          symbolSize: 5,
          data: data.rows.map((row) => [row.ts, row.value]),
          markLine: limit ? {
            symbol: "none",
            lineStyle: { type: "dashed", color: "#d32f2f" },
            label: { formatter: words.limit + " " + limit.limit + " " + limit.unit },
            data: [{ yAxis: limit.limit }],
          } : undefined,
        };
      });
      chart.setOption({
        animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
        grid: { left: 48, right: 16, top: 36, bottom: 40 },
        xAxis: { type: "time" }, yAxis: { type: "value" }, series,
        graphic: series.length ? [] : [{ type: "text", left: "center", top: "middle", style: { text: words.no_data } }],
      }, true);
      element.dataset.series = JSON.stringify(series.map((s) => s.name));
      element.dataset.limitsDrawn = String(series.filter((s) => s.markLine).length);
      element.dataset.ready = "yes";
    });
  }

  const buttons = document.querySelectorAll("button.point");
  buttons.forEach((button) => button.addEventListener("click", () => show(button.dataset.point, button.dataset.outlet)));
  if (buttons.length) show(buttons[0].dataset.point, buttons[0].dataset.outlet);
})();
