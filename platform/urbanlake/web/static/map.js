/* The dataset page's interactive map. The page already shows the positions as an SVG drawn on the
   server; this draws the same rows with Leaflet (vendored under /static/vendor/leaflet) from the
   records API's GeoJSON (data-geojson), over the city's other geographic datasets as a faint
   background (data-basemap, space-separated URLs). No tiles: nothing is asked of another host.
   The SVG stays for print and comes back if anything here fails. */
(function () {
  "use strict";
  var LEAFLET = "/static/vendor/leaflet/leaflet.js";
  var holder = document.querySelector(".map[data-geojson]");
  if (!holder || !window.fetch || !window.Promise) {
    return;
  }

  function withLeaflet(ready) {
    if (window.L) {
      ready();
      return;
    }
    var script = document.createElement("script");
    script.src = LEAFLET;
    script.onload = ready;
    document.head.appendChild(script);
  }

  function geojson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/geo+json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(url + ": " + response.status);
        }
        return response.json();
      });
  }

  function text(value) {
    if (value === null || value === undefined) {
      return "";
    }
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  // A popup is built from elements, never from HTML strings: the values are the dataset's.
  function popup(properties) {
    var table = document.createElement("table");
    Object.keys(properties || {}).forEach(function (key) {
      var row = table.insertRow();
      var name = document.createElement("th");
      name.scope = "row";
      name.textContent = key;
      row.appendChild(name);
      row.insertCell().textContent = text(properties[key]);
    });
    return table;
  }

  // Lines and polygons get a class (colours come from the stylesheet, dark mode included);
  // points are circle markers with their own class, which a style must not replace.
  function lineStyle(className) {
    return function (feature) {
      var type = feature && feature.geometry ? feature.geometry.type : "";
      return type.indexOf("Point") === -1 ? { className: className } : {};
    };
  }

  function draw() {
    var canvas = document.createElement("div");
    canvas.className = "map-canvas";
    canvas.setAttribute("role", "region");
    canvas.setAttribute("aria-label", holder.getAttribute("data-label") || "Map");
    canvas.tabIndex = 0;
    holder.insertBefore(canvas, holder.firstChild);
    var map = L.map(canvas, { keyboard: true, minZoom: 2, maxZoom: 19, zoomSnap: 0.5 });
    // The credit links to the local list of vendored libraries; the note under the map says
    // what the background is (a long credit would cover the scale on a phone).
    map.attributionControl.setPrefix('<a href="/static/vendor/README.md">Leaflet</a>');
    L.control.scale({ imperial: false }).addTo(map);

    var basemap = (holder.getAttribute("data-basemap") || "").split(/\s+/).filter(Boolean);
    var asked = [geojson(holder.getAttribute("data-geojson"))].concat(basemap.map(function (url) {
      return geojson(url).catch(function () { return null; });  // a background may be missing
    }));
    Promise.all(asked).then(function (answers) {
      var layers = answers.slice(1).filter(Boolean).map(function (collection) {
        return L.geoJSON(collection, {
          interactive: false,
          style: lineStyle("map-base-line"),
          pointToLayer: function (feature, where) {
            return L.circleMarker(where, { radius: 3, className: "map-base-point", interactive: false });
          }
        });
      });
      var data = L.geoJSON(answers[0], {
        style: lineStyle("map-line"),
        pointToLayer: function (feature, where) {
          return L.circleMarker(where, { radius: 5, className: "map-point" });
        },
        onEachFeature: function (feature, layer) {
          layer.bindPopup(popup(feature.properties));
        }
      });
      var bounds = data.getBounds();
      if (!bounds.isValid()) {
        layers.forEach(function (layer) { bounds.extend(layer.getBounds()); });
      }
      if (bounds.isValid()) {
        map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17 });
      } else {
        map.setView([0, 0], 2);
      }
      layers.forEach(function (layer) { layer.addTo(map); });
      data.addTo(map);
      var fallback = holder.querySelector(".map-fallback");
      if (fallback) {
        fallback.classList.add("js-replaced");  // hidden on screen, still printed
      }
      holder.classList.add("map-live");
    }).catch(function () {
      map.remove();
      holder.removeChild(canvas);  // the server's SVG stays
    });
  }

  withLeaflet(draw);
})();
