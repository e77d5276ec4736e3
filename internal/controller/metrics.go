package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// brokerPodCollector exports upstream's akri_broker_pod_count gauge (broker
// Pods by configuration and node). Upstream counts up on create and down on
// delete, which drifts when a pod goes any other way; this counts the broker
// Pods in the cache at scrape time.
type brokerPodCollector struct {
	reader client.Reader
}

var brokerPodCountDesc = prometheus.NewDesc("akri_broker_pod_count", "Akri Broker Pod Count", []string{"configuration", "node"}, nil)

var _ prometheus.Collector = (*brokerPodCollector)(nil)

func (c *brokerPodCollector) Describe(ch chan<- *prometheus.Desc) { ch <- brokerPodCountDesc }

func (c *brokerPodCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var pods corev1.PodList
	if err := c.reader.List(ctx, &pods, client.HasLabels{LabelTargetNode}); err != nil {
		return // cache not started yet
	}
	type key struct{ configuration, node string }
	counts := map[key]int{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if ref := controllerRef(p); ref == nil || ref.Kind != "Instance" || p.DeletionTimestamp != nil {
			continue
		}
		counts[key{p.Labels[LabelConfiguration], p.Labels[LabelTargetNode]}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(brokerPodCountDesc, prometheus.GaugeValue, float64(n), k.configuration, k.node)
	}
}
