//go:build tools

// Wrapper module: builds Prometheus and promtool, which check the chart's alerting rules and
// dashboard queries and scrape the operator in the e2e tests.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
