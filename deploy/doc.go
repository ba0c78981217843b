// Package deploy holds no code: it is the home of the deployment files and
// of the tests that check them offline.
//
//	compose/        docker compose: NATS, PostgreSQL, migrate, grants, the three roles
//	kubernetes/     Deployments, PodDisruptionBudgets, migration Job, ConfigMap,
//	                Secret example, KEDA ScaledObjects; kustomization.yaml
//	nats/           NATS server configuration: single node, 3-node cluster,
//	                least-privilege users (auth.conf)
//	observability/  Grafana dashboard and Prometheus alert rules
//	sql/            PostgreSQL roles and grants per domainguard role
//
// The tests parse every YAML and JSON file here; decode the Kubernetes
// manifests strictly into the API types; check that every environment
// variable is one internal/config reads, every command one cmd/domainguard
// registers and every domainguard_* metric in the dashboard and alerts one
// the Go sources register (found by reading the prometheus.*Opts literals of
// the non-test Go files, see metrics_test.go); start a NATS server from
// nats/single.conf to show each user's permissions; and apply sql/roles.sql
// to a fresh database to show each PostgreSQL role can do its job and no
// more. docs/OPERATING.md explains how to use all of it.
package deploy
