// Type-checks dashboards/storage-retention.json against Grafana's own dashboard schema.
import type { Dashboard } from "@grafana/schema";
import type { Loose } from "./loose.js";
import dashboard from "../storage-retention.json" with { type: "json" };

export const checked: Loose<Dashboard> = dashboard;
