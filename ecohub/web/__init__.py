"""The public web portal: server-rendered pages over the API, with the one map (一张图),
rankings, station charts, enterprise disclosure and the agency's alarm and quarantine
pages. Its map and chart libraries and the boundary GeoJSON are vendored under
``static/`` (see ``scripts/vendor_frontend.py``), so it works on a closed network.
"""
