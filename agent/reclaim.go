package agent

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// listUsed asks the kubelet's PodResources service which akri.sh devices
// containers hold now.
func listUsed(ctx context.Context, socket string) (usedSet, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := podresourcesv1.NewPodResourcesListerClient(conn).List(ctx, &podresourcesv1.ListPodResourcesRequest{})
	if err != nil {
		return nil, err
	}
	used := usedSet{}
	for _, pod := range resp.GetPodResources() {
		for _, c := range pod.GetContainers() {
			for _, d := range c.GetDevices() {
				if !strings.HasPrefix(d.GetResourceName(), "akri.sh/") {
					continue
				}
				ids := used[d.GetResourceName()]
				if ids == nil {
					ids = map[string]bool{}
					used[d.GetResourceName()] = ids
				}
				for _, id := range d.GetDeviceIds() {
					ids[id] = true
				}
			}
		}
	}
	return used, nil
}
