// The one map: boundaries shipped with the platform, air stations coloured by their
// newest AQI (HJ 633 colours), surface-water sites by GB 3838 class, and pollution
// sources by alarm state. Every layer comes from the open-data API.
(function () {
  "use strict";
  const element = document.getElementById("map");
  const words = JSON.parse(element.dataset.words);
  const NO_DATA = "#9e9e9e";
  const map = L.map(element, { zoomSnap: 0.5, maxZoom: 16, attributionControl: false, fadeAnimation: false })
    .setView([35, 105], 4);
  const escape = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
  const getJSON = (url) => fetch(url).then((response) => {
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  });
  // Every time on a page is Beijing time, whatever the browser's own zone.
  const BEIJING = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false,
  });
  const local = (iso) => {
    if (!iso) return "";
    const parts = Object.fromEntries(BEIJING.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute +
      " (" + words.beijing_time + ")";
  };

  const boundaryStyle = { color: "#78909c", weight: 1, fillColor: "#f5f7f5", fillOpacity: 1 };
  const cityStyle = { color: "#b0bec5", weight: 0.6, fill: false };
  // Nearby stations are grouped (a city's dozen stations would pile into one blob); a
  // group shows its count in the colour of its worst AQI.
  const RANK = new Map();
  const air = L.markerClusterGroup({
    maxClusterRadius: 36,
    disableClusteringAtZoom: 10,
    showCoverageOnHover: false,
    iconCreateFunction: (cluster) => {
      let worst = null;
      for (const child of cluster.getAllChildMarkers()) {
        const info = RANK.get(child);
        if (info && (worst === null || info.aqi > worst.aqi)) worst = info;
      }
      const colour = worst ? worst.colour : NO_DATA;
      return L.divIcon({
        className: "aqi-cluster",
        html: '<div style="background:' + colour + '">' + cluster.getChildCount() + "</div>",
        iconSize: [30, 30],
      });
    },
  }).addTo(map);
  const water = L.layerGroup().addTo(map);
  const sources = L.layerGroup().addTo(map);
  const cities = L.layerGroup();
  const overlays = {};
  overlays[words.layer_air] = air;
  overlays[words.layer_water] = water;
  overlays[words.layer_sources] = sources;
  overlays[words.layer_cities] = cities;
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);

  const outline = getJSON("/static/geo/provinces.geojson").then((geo) => {
    const layer = L.geoJSON(geo, { style: boundaryStyle, interactive: false }).addTo(map).bringToBack();
    country = layer.getBounds();
  });
  let citiesLoaded = false;
  map.on("overlayadd", (event) => {
    if (event.layer !== cities || citiesLoaded) return;
    citiesLoaded = true;
    getJSON("/static/geo/cities.geojson").then((geo) => {
      L.geoJSON(geo, { style: cityStyle, interactive: false }).addTo(cities);
    });
  });

  // The view fits the data (all of China for the national network, one city for a city's
  // platform); with no data yet, the country's outline.
  const bounds = [];
  let country = null;
  // Not animated: the page opens on its view, and data-view below is the view shown.
  function fit() {
    if (bounds.length) map.fitBounds(bounds, { padding: [30, 30], maxZoom: 10, animate: false });
    else if (country) map.fitBounds(country, { padding: [10, 10], animate: false });
  }

  const airDone = Promise.all([
    getJSON("/api/v1/sites?kind=air&limit=5000"),
    getJSON("/api/v1/aqi/latest"),
  ]).then(([sites, latest]) => {
    const bySite = new Map(latest.map((row) => [row.site, row]));
    for (const site of sites) {
      if (site.latitude == null || site.longitude == null) continue;
      const aqi = bySite.get(site.code);
      const marker = L.marker([site.latitude, site.longitude], {
        title: site.name,
        icon: L.divIcon({
          className: "aqi-marker site-" + site.code,
          html: '<div class="aqi-dot" style="background:' + (aqi ? aqi.colour : NO_DATA) + '"></div>',
          iconSize: [16, 16],
        }),
      });
      if (aqi && aqi.aqi !== null) RANK.set(marker, { aqi: aqi.aqi, colour: aqi.colour });
      marker.bindPopup(
        "<strong>" + escape(site.name) + "</strong> " + escape(site.code) + "<br>" +
        (aqi
          ? words.aqi + ": <b>" + aqi.aqi + "</b> " + escape(aqi.category) + "<br>" +
            words.primary + ": " + escape(aqi.primary_pollutants.join(", ") || "—") + "<br>" +
            words.updated + ": " + escape(local(aqi.ts))
          : words.no_data) +
        '<br><a href="/stations/' + encodeURIComponent(site.code) + '">' + words.details + "</a>"
      );
      marker.addTo(air);
      bounds.push([site.latitude, site.longitude]);
    }
  });

  const waterDone = Promise.all([
    getJSON("/api/v1/sites?kind=surface_water&limit=5000"),
    getJSON("/api/v1/water/classes"),
  ]).then(([sites, classes]) => {
    const bySite = new Map(classes.map((row) => [row.site, row]));
    for (const site of sites) {
      if (site.latitude == null || site.longitude == null) continue;
      const assessed = bySite.get(site.code);
      const icon = L.divIcon({
        className: "water-marker site-" + site.code,
        html: '<div class="water-icon" style="background:' + (assessed ? assessed.colour : NO_DATA) + '"></div>',
        iconSize: [14, 14],
      });
      L.marker([site.latitude, site.longitude], { icon: icon, title: site.name })
        .bindPopup(
          "<strong>" + escape(site.name) + "</strong><br>" +
          (assessed
            ? words.water_class + ": <b>" + escape(assessed.class_name) + "</b> (" +
              escape(document.body.dataset.lang === "en" ? assessed.status_en : assessed.status) + ")<br>" +
              words.updated + ": " + escape(local(assessed.day))
            : words.no_data) +
          '<br><a href="/stations/' + encodeURIComponent(site.code) + '">' + words.details + "</a>"
        )
        .addTo(water);
      bounds.push([site.latitude, site.longitude]);
    }
  });

  const sourcesDone = getJSON("/api/v1/sources").then((geo) => {
    for (const feature of geo.features) {
      const [lon, lat] = feature.geometry.coordinates;
      const p = feature.properties;
      const alarm = p.alarm_state === "alarm";
      const icon = L.divIcon({
        className: "source-marker source-" + p.alarm_state + " enterprise-" + p.uscc,
        html: '<div class="source-icon" style="background:' + (alarm ? "#d32f2f" : "#455a64") + '"></div>',
        iconSize: [12, 12],
      });
      L.marker([lat, lon], { icon: icon, title: p.name })
        .bindPopup(
          "<strong>" + escape(p.name) + "</strong><br>" + words.industry + ": " + escape(p.industry) +
          "<br>" + words.alarm_state + ": " + (alarm ? words.state_alarm + " (" + p.open_alarms + ")" : words.state_normal) +
          '<br><a href="/enterprises/' + encodeURIComponent(p.uscc) + '">' + words.details + "</a>"
        )
        .addTo(sources);
      bounds.push([lat, lon]);
    }
  });

  element.leafletMap = map;  // for tests and embedding pages
  Promise.allSettled([airDone, waterDone, sourcesDone, outline]).then((results) => {
    fit();
    element.dataset.view = map.getBounds().toBBoxString();
    const failed = results.filter((r) => r.status === "rejected");
    element.dataset.ready = failed.length ? "partial" : "yes";
    failed.forEach((r) => console.error(r.reason));
  });
})();
