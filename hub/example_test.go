package hub_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pulse-go/pulse"
	"github.com/pulse-go/pulse/client"
	"github.com/pulse-go/pulse/hub"
)

// A hub on a pulse.Server: publications made before a client came are
// replayed to it from the channel's history when it subscribes from a
// position, then live ones follow, each with its position.
func Example() {
	srv, err := pulse.NewServer(nil)
	if err != nil {
		log.Fatal(err)
	}
	h := hub.New(nil) // the in-memory broker
	mux := http.NewServeMux()
	mux.Handle("/ws", srv.Handler(h))
	hs := httptest.NewServer(mux)
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()

	// Two publications before any subscriber: the history keeps them.
	first, _ := h.Publish(ctx, "news", []byte(`"one"`), hub.PublishOptions{})
	h.Publish(ctx, "news", []byte(`"two"`), hub.PublishOptions{})

	got := make(chan client.Message, 10)
	c := client.New("ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", &client.Options{
		OnMessage: func(m client.Message) { got <- m },
	})
	clientDone := make(chan error, 1)
	go func() { clientDone <- c.Run(ctx) }()

	// Resume from just before the first: both are replayed.
	since := hub.Position{Epoch: first.Pos.Epoch, Offset: first.Pos.Offset - 1}
	sub, err := c.Subscribe(ctx, "news", &client.SubscribeOptions{Since: &since})
	fmt.Println("subscribed:", sub.Resumed, sub.Recovered, err)
	h.Publish(ctx, "news", []byte(`"three"`), hub.PublishOptions{})
	for range 3 {
		m := <-got
		fmt.Println(m.Pos.Offset, string(m.Data), "replayed:", m.Replayed)
	}

	stop()
	<-clientDone
	hs.Close()
	fmt.Println("Run:", <-ran)
	// Output:
	// subscribed: true true <nil>
	// 1 "one" replayed: true
	// 2 "two" replayed: true
	// 3 "three" replayed: false
	// Run: <nil>
}
