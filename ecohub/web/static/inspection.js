// The field inspection form: the device's time and, when the browser may read it, its
// GPS position and accuracy fill the hidden fields (a page served over plain HTTP to a
// phone gets no position: the record is then stored without one).
(function () {
  "use strict";
  const state = document.getElementById("gps-state");
  const time = document.getElementById("inspected_at");
  if (!state || !time) return;
  const now = new Date();
  const offset = -now.getTimezoneOffset();
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  time.value = new Date(now.getTime() + offset * 60000).toISOString().slice(0, 19) +
    (offset >= 0 ? "+" : "-") + pad(offset / 60) + ":" + pad(offset % 60);
  if (!navigator.geolocation) return;
  state.textContent = state.dataset.waiting;
  navigator.geolocation.getCurrentPosition((position) => {
    document.getElementById("latitude").value = position.coords.latitude.toFixed(6);
    document.getElementById("longitude").value = position.coords.longitude.toFixed(6);
    document.getElementById("accuracy_m").value = position.coords.accuracy.toFixed(1);
    state.textContent = state.dataset.found + " " + position.coords.latitude.toFixed(5) + ", " +
      position.coords.longitude.toFixed(5) + " (±" + Math.round(position.coords.accuracy) + " m)";
  }, () => { state.textContent = state.dataset.none; }, { enableHighAccuracy: true, timeout: 15000 });
})();
