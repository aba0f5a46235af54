// A station's charts: hourly AQI for 48 hours and daily AQI for 30 days (bars in the
// HJ 633 level colours), and its pollutants' hourly means.
(function () {
  "use strict";
  const root = document.getElementById("station");
  const d = root.dataset;
  const words = JSON.parse(d.words);
  const AIR = [["a34004", "PM2.5"], ["a34002", "PM10"], ["a21004", "NO2"], ["a05024", "O3"], ["a21026", "SO2"], ["a21005", "CO"]];
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

  // Each pollutant in the unit its standard uses (the API converts: ambient gases in
  // μg/m³, CO in mg/m³ on its own axis), named with that unit; symbols where a series is
  // sparse, so that a few points are seen at all.
  function pollutantChart() {
    const element = document.getElementById("chart-pollutants");
    const parameters = d.air === "yes" ? AIR : WATER;
    const requests = parameters.map(([code]) =>
      getJSON("/api/v1/sites/" + encodeURIComponent(d.code) + "/series", {
        parameter: code, start: d.start48, end: d.end, period: "hour", limit: 1000,
      }).catch(() => ({ rows: [], unit: "" }))
    );
    return Promise.all(requests).then((results) => {
      const chart = echarts.init(element);
      const units = [];
      const series = results.map((result, index) => {
        const unit = result.unit || "";
        if (unit && !units.includes(unit)) units.push(unit);
        const data = result.rows.filter((row) => row.valid).map((row) => [row.ts, row.value]);
        return {
          type: "line",
          name: parameters[index][1] + (unit ? " (" + unit + ")" : ""),
          unit: unit,
          showSymbol: data.length < 60,
          symbolSize: 5,
          connectNulls: false,
          data: data,
        };
      }).filter((s) => s.data.length);
      const axes = units.length ? units : [""];
      series.forEach((s) => { s.yAxisIndex = Math.min(1, Math.max(0, axes.indexOf(s.unit))); delete s.unit; });
      chart.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 56, right: axes.length > 1 ? 56 : 16, top: 36, bottom: 40 },
        xAxis: { type: "time" },
        yAxis: axes.slice(0, 2).map((unit, index) => ({
          type: "value", name: unit, position: index ? "right" : "left",
          splitLine: { show: index === 0 },
        })),
        series: series,
        graphic: series.length ? [] : [{ type: "text", left: "center", top: "middle", style: { text: words.no_data } }],
      });
      element.dataset.series = JSON.stringify(series.map((s) => s.name));
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
