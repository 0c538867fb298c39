// Type-checks dashboards/device.json against Grafana's own dashboard schema.
import type { Dashboard } from "@grafana/schema";
import type { Loose } from "./loose.js";
import dashboard from "../device.json" with { type: "json" };

export const checked: Loose<Dashboard> = dashboard;
