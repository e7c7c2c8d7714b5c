// Package cluster holds the multi-node tests of pulse: two real `pulse
// serve` processes, built from cmd/pulse, on free loopback ports, sharing
// one real redis-server (package redisbroker/redistest) through --broker.
// Go clients (package client) reach the nodes the way a load balancer
// would: their Dial picks the first node that answers, so a client whose
// node died lands on the other one.
//
// Install redis-server with scripts/redis-deps.sh (scripts/test.sh does);
// without it the tests fail, they never skip.
package cluster
