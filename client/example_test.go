package client_test

import (
	"context"
	"encoding/json"
	"log"

	"github.com/pulse-go/pulse/client"
)

// A chat client: it prints what arrives in room:lobby, resuming after every
// reconnect, and says when messages were lost.
func Example() {
	ctx := context.Background()
	c := client.New("ws://localhost:8080/ws", &client.Options{
		Name: "ann",
		OnState: func(s client.StateChange) {
			log.Printf("%v (generation %d) %v, next dial in %v", s.State, s.Generation, s.Err, s.Delay)
		},
		OnMessage: func(m client.Message) { log.Printf("%s: %s", m.Channel, m.Data) },
		OnSubscribed: func(s client.Subscribed) {
			if s.Resumed && !s.Recovered {
				log.Printf("%s: messages were lost; refetch the room", s.Channel)
			}
		},
	})
	go func() {
		if _, err := c.Subscribe(ctx, "room:lobby", nil); err != nil {
			log.Print(err)
		}
		if _, err := c.Publish(ctx, "room:lobby", json.RawMessage(`{"text":"hello"}`), nil); err != nil {
			log.Print(err) // ErrQueueFull, ErrExpired, a *ServerError...
		}
	}()
	if err := c.Run(ctx); err != nil {
		log.Fatal(err) // a terminal close code: do not reconnect
	}
}
