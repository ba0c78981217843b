package testmetrics

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "domainguard_test_until_seconds", Help: "h"}, []string{"server"})
	reg.MustRegister(g)
	g.WithLabelValues("a").Set(1.5e9)
	g.WithLabelValues("b").Set(7)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	families, err := Scrape(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range families["domainguard_test_until_seconds"].GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if len(got) != 2 || got["a"] != 1.5e9 || got["b"] != 7 {
		t.Errorf("scraped %v", got)
	}

	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	if _, err := Scrape(missing.URL); err == nil {
		t.Error("a 404 scraped without error")
	}
}

func TestObservations(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "domainguard_test_seconds", Help: "h"}, []string{"server", "route"})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "domainguard_test_total", Help: "c"})
	reg.MustRegister(h, c)
	h.WithLabelValues("api", "a").Observe(1)
	h.WithLabelValues("api", "a").Observe(2)
	h.WithLabelValues("api", "b").Observe(3)
	h.WithLabelValues("console", "a") // a series with no observations
	for _, tt := range []struct {
		labels map[string]string
		want   uint64
	}{
		{nil, 3},
		{map[string]string{"server": "api"}, 3},
		{map[string]string{"server": "api", "route": "a"}, 2},
		{map[string]string{"route": "a"}, 2},
		{map[string]string{"server": "console"}, 0},
		{map[string]string{"server": "api", "route": "c"}, 0},
		{map[string]string{"nope": "x"}, 0},
	} {
		got, err := Observations(reg, "domainguard_test_seconds", tt.labels)
		if err != nil || got != tt.want {
			t.Errorf("Observations(%v) = %d, %v; want %d", tt.labels, got, err, tt.want)
		}
	}
	if _, err := Observations(reg, "domainguard_test_total", nil); err == nil {
		t.Error("a counter counted as a histogram")
	}
}
