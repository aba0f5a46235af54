// A station's charts: hourly AQI for 48 hours and daily AQI for 30 days (bars in the
// HJ 633 level colours), and its pollutants' hourly means.
(function () {
  "use strict";
  const root = document.getElementById("station");
  const d = root.dataset;
  const words = JSON.parse(d.words);
  const AIR = [["a34004", "PM2.5"], ["a34002", "PM10"], ["a21004", "NO2"], ["a05024", "O3"], ["a21026", "SO2"]];
  const WATER = [["w01018", "COD"], ["w21003", "NH3-N"], ["w21011", "TP"], ["w01009", "DO"], ["w01001", "pH"]];
  const getJSON = (path, params) =>
    fetch(path + "?" + new URLSearchParams(params)).then((r) => (r.ok ? r.json() : Promise.reject(r.status)));

  function aqiChart(id, period, start, end) {
    const element = document.getElementById(id);
    return getJSON("/api/v1/sites/" + encodeURIComponent(d.code) + "/aqi", { period, start, end })
      .then((data) => {
        const chart = echarts.init(element);
        const rows = data.rows.filter((row) => row.aqi !== null);
        chart.setOption({
          animation: false,
          tooltip: { trigger: "axis" },
          grid: { left: 40, right: 16, top: 16, bottom: 40 },
          xAxis: { type: "time" },
          yAxis: { type: "value", name: words.aqi },
          series: [{
            type: "bar",
            name: words.aqi,
            data: rows.map((row) => ({ value: [row.ts, row.aqi], itemStyle: { color: row.colour } })),
          }],
          graphic: rows.length ? [] : [{ type: "text", left: "center", top: "middle", style: { text: words.no_data } }],
        });
        element.dataset.points = String(rows.length);
        element.dataset.ready = "yes";
      });
  }

  function pollutantChart() {
    const element = document.getElementById("chart-pollutants");
    const parameters = d.air === "yes" ? AIR : WATER;
    const requests = parameters.map(([code]) =>
      getJSON("/api/v1/sites/" + encodeURIComponent(d.code) + "/series", {
        parameter: code, start: d.start48, end: d.end, period: "hour", limit: 1000,
      }).catch(() => ({ rows: [] }))
    );
    return Promise.all(requests).then((results) => {
      const chart = echarts.init(element);
      const series = results.map((result, index) => ({
        type: "line",
        name: parameters[index][1],
        showSymbol: false,
        data: result.rows.filter((row) => row.valid).map((row) => [row.ts, row.value]),
      })).filter((s) => s.data.length);
      chart.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 48, right: 16, top: 36, bottom: 40 },
        xAxis: { type: "time" },
        yAxis: { type: "value" },
        series: series,
        graphic: series.length ? [] : [{ type: "text", left: "center", top: "middle", style: { text: words.no_data } }],
      });
      element.dataset.ready = "yes";
    });
  }

  const work = [pollutantChart()];
  if (d.air === "yes") {
    work.push(aqiChart("chart-48h", "hour", d.start48, d.end));
    work.push(aqiChart("chart-30d", "day", d.start30, d.end30));
  }
  Promise.allSettled(work).then(() => { root.dataset.ready = "yes"; });
  window.addEventListener("resize", () => {
    document.querySelectorAll(".chart").forEach((el) => echarts.getInstanceByDom(el)?.resize());
  });
})();
