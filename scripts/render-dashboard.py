#!/usr/bin/env python3
"""Renders the Grafana dashboard's panels (docker/grafana/dashboards/orderflow.json) from a
real Prometheus into one PNG: every panel's queries are asked of Prometheus's query_range API
and drawn with matplotlib, laid out as the dashboard lays them out. Grafana is not in Debian;
this shows the same queries over the same data.

Usage: render-dashboard.py PROMETHEUS_URL DASHBOARD_JSON OUT_PNG [SECONDS]
  SECONDS  how far back to draw (default 180); $__rate_interval becomes 15s.
Needs matplotlib (pip install matplotlib).
"""

import json
import sys
import time
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

RATE_INTERVAL = "15s"
STEP = 2


def query_range(base, expr, start, end):
    params = urllib.parse.urlencode(
        {"query": expr, "start": start, "end": end, "step": STEP}
    )
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=10) as r:
        answer = json.load(r)
    if answer.get("status") != "success":
        raise SystemExit(f"Prometheus refused {expr!r}: {answer}")
    return answer["data"]["result"]


def legend(template, labels):
    """Grafana's legendFormat: {{label}} replaced by the series' label value."""
    out = template
    for key, value in labels.items():
        out = out.replace("{{" + key + "}}", value)
    return out


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    base, dashboard_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 180
    dashboard = json.load(open(dashboard_path))
    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) // 8
    fig, axes = plt.subplots(rows, 2, figsize=(16, 4.2 * rows), squeeze=False)
    end = time.time()
    start = end - seconds
    for panel in panels:
        grid = panel["gridPos"]
        ax = axes[grid["y"] // 8][grid["x"] // 12]
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
            for series in query_range(base, expr, start, end):
                xs = [float(t) - end for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                ax.plot(xs, ys, label=legend(target.get("legendFormat", ""), series["metric"]))
        ax.set_title(panel["title"], fontsize=11, loc="left")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        ax.set_ylabel({"ops": "per second", "s": "seconds"}.get(unit, ""))
        ax.set_xlabel("seconds ago")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="upper left", ncol=2)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(
        f"{dashboard['title']}: the dashboard's queries from a real Prometheus "
        f"(last {seconds} s)",
        fontsize=13,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
