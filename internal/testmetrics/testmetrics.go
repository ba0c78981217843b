// Package testmetrics reads metrics where prometheus/testutil does not: it
// scrapes the /metrics of a role running as a separate process, and counts
// a histogram's observations (testutil.ToFloat64 reads counters and gauges
// only). Tests read counters and gauges in their own process with testutil.
package testmetrics

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape reads the Prometheus text exposition at url and returns its metric
// families by name.
func Scrape(url string) (map[string]*dto.MetricFamily, error) {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return families, nil
}

// Observations returns how many values the histogram name in g has
// observed, summed over its series whose labels include labels.
func Observations(g prometheus.Gatherer, name string, labels map[string]string) (uint64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, fmt.Errorf("gather %s: %w", name, err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		if f.GetType() != dto.MetricType_HISTOGRAM {
			return 0, fmt.Errorf("%s is a %s, not a histogram", name, f.GetType())
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n, nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}
