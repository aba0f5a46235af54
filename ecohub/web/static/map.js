// The one map: boundaries shipped with the platform, air stations coloured by their
// newest AQI (HJ 633 colours), surface-water sites by GB 3838 class, and pollution
// sources by alarm state. Every layer comes from the open-data API.
(function () {
  "use strict";
  const element = document.getElementById("map");
  const words = JSON.parse(element.dataset.words);
  const NO_DATA = "#9e9e9e";
  const map = L.map(element, { zoomSnap: 0.5, attributionControl: false, fadeAnimation: false })
    .setView([35, 105], 4);
  const escape = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
  const getJSON = (url) => fetch(url).then((response) => {
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  });
  const local = (iso) => (iso ? new Date(iso).toLocaleString() : "");

  const boundaryStyle = { color: "#78909c", weight: 1, fillColor: "#f5f7f5", fillOpacity: 1 };
  const cityStyle = { color: "#b0bec5", weight: 0.6, fill: false };
  const air = L.layerGroup().addTo(map);
  const water = L.layerGroup().addTo(map);
  const sources = L.layerGroup().addTo(map);
  const cities = L.layerGroup();
  const overlays = {};
  overlays[words.layer_air] = air;
  overlays[words.layer_water] = water;
  overlays[words.layer_sources] = sources;
  overlays[words.layer_cities] = cities;
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);

  getJSON("/static/geo/provinces.geojson").then((geo) => {
    L.geoJSON(geo, { style: boundaryStyle, interactive: false }).addTo(map).bringToBack();
  });
  let citiesLoaded = false;
  map.on("overlayadd", (event) => {
    if (event.layer !== cities || citiesLoaded) return;
    citiesLoaded = true;
    getJSON("/static/geo/cities.geojson").then((geo) => {
      L.geoJSON(geo, { style: cityStyle, interactive: false }).addTo(cities);
    });
  });

  const bounds = [];
  function fit() {
    if (bounds.length) map.fitBounds(bounds, { padding: [30, 30], maxZoom: 9 });
  }

  const airDone = Promise.all([
    getJSON("/api/v1/sites?kind=air&limit=5000"),
    getJSON("/api/v1/aqi/latest"),
  ]).then(([sites, latest]) => {
    const bySite = new Map(latest.map((row) => [row.site, row]));
    for (const site of sites) {
      if (site.latitude == null || site.longitude == null) continue;
      const aqi = bySite.get(site.code);
      const marker = L.circleMarker([site.latitude, site.longitude], {
        radius: 8,
        color: "#263238",
        weight: 1,
        fillColor: aqi ? aqi.colour : NO_DATA,
        fillOpacity: 0.95,
        className: "aqi-marker site-" + site.code,
      });
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

  Promise.allSettled([airDone, waterDone, sourcesDone]).then((results) => {
    fit();
    const failed = results.filter((r) => r.status === "rejected");
    element.dataset.ready = failed.length ? "partial" : "yes";
    failed.forEach((r) => console.error(r.reason));
  });
})();
