// The public complaint form: a click on the map (the shipped city outlines; no tiles, the
// agency's network is closed) or the phone's position fills the hidden longitude and
// latitude; an anonymous complaint clears and disables the contact field.
(function () {
  "use strict";
  const element = document.getElementById("complaint-map");
  const state = document.getElementById("where-state");
  const lon = document.getElementById("longitude");
  const lat = document.getElementById("latitude");
  if (!element || typeof L === "undefined") return;
  const map = L.map(element).setView([35, 105], 4);
  fetch("/static/geo/cities.geojson").then((r) => (r.ok ? r.json() : null)).then((geo) => {
    if (geo) L.geoJSON(geo, { interactive: false, style: { color: "#789", weight: 1, fillOpacity: 0.03 } }).addTo(map);
  }).catch(() => {});
  let marker = null;
  const place = (latitude, longitude) => {
    lat.value = latitude.toFixed(6);
    lon.value = longitude.toFixed(6);
    if (marker) marker.setLatLng([latitude, longitude]);
    else marker = L.marker([latitude, longitude]).addTo(map);
    state.textContent = latitude.toFixed(5) + ", " + longitude.toFixed(5);
  };
  map.on("click", (event) => place(event.latlng.lat, event.latlng.lng));
  const gps = document.getElementById("use-gps");
  if (gps && navigator.geolocation) {
    gps.addEventListener("click", () => navigator.geolocation.getCurrentPosition((p) => {
      place(p.coords.latitude, p.coords.longitude);
      map.setView([p.coords.latitude, p.coords.longitude], 13);
    }, () => {}, { enableHighAccuracy: true, timeout: 15000 }));
  } else if (gps) gps.hidden = true;
  const anonymous = document.getElementById("anonymous");
  const contact = document.getElementById("contact");
  if (anonymous && contact) anonymous.addEventListener("change", () => {
    contact.disabled = anonymous.checked;
    if (anonymous.checked) contact.value = "";
  });
})();
