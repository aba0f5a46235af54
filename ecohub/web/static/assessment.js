// A city's annual report card: days per AQI category (HJ 633-2012) as bars in the
// levels' colours. The figures come with the page (data-chart); nothing is fetched.
(function () {
  "use strict";
  const root = document.getElementById("assessment-card");
  if (!root) return;
  const data = JSON.parse(root.dataset.chart);
  const element = document.getElementById("chart-categories");
  const chart = echarts.init(element);
  const total = data.levels.reduce((sum, level) => sum + level.value, 0);
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    grid: { left: 48, right: 16, top: 24, bottom: 32 },
    xAxis: { type: "category", data: data.levels.map((level) => level.name) },
    yAxis: { type: "value", name: data.days, minInterval: 1 },
    series: [{
      type: "bar",
      name: data.title,
      label: { show: true, position: "top" },
      data: data.levels.map((level) => ({ value: level.value, itemStyle: { color: level.colour, borderColor: "#555" } })),
    }],
    graphic: total ? [] : [{ type: "text", left: "center", top: "middle", style: { text: data.no_data } }],
  });
  element.dataset.days = String(total);
  element.dataset.ready = "yes";
  window.addEventListener("resize", () => chart.resize());
})();
