package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/pulse-go/pulse/hub"
)

// The game's rules. The arena is arenaW x arenaH units; players are discs
// that move at playerSpeed in the direction of their last input, and score
// a point when they touch the star, which then jumps elsewhere.
const (
	GameTick    = 40 * time.Millisecond // 25 Hz
	arenaW      = 960
	arenaH      = 540
	playerR     = 16
	starR       = 12
	playerSpeed = 260 // units per second
	maxName     = 20  // runes of a player's name shown
	maxInbox    = 1024
)

// input is what a player publishes to GameInputChannel.
type input struct {
	ID  string  `json:"id"`  // the player's member id; used only for server-made input
	DX  float64 `json:"dx"`  // direction, each in [-1, 1]
	DY  float64 `json:"dy"`  //
	RTT float64 `json:"rtt"` // the player's last heartbeat round trip, ms; -1 unknown
}

// player is one disc in the arena.
type player struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Color string  `json:"color"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Score int     `json:"score"`
	RTT   float64 `json:"rtt"` // ms, one decimal; -1 until the player tells
	dx    float64
	dy    float64
}

type point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// state is one publication of GameStateChannel.
type state struct {
	Tick    uint64    `json:"tick"`
	W       int       `json:"w"`
	H       int       `json:"h"`
	Star    point     `json:"star"`
	Players []*player `json:"players"`
}

// game is the arena. The broker's deliver callback fills the inbox; the
// tick goroutine owns everything else.
type game struct {
	mu      sync.Mutex // guards inbox
	inbox   []hub.Event
	dropped int // inputs dropped because the inbox was full

	// Owned by the tick goroutine.
	rng     *rand.Rand
	tick    uint64
	star    point
	players map[string]*player
}

func newGame(seed uint64) *game {
	g := &game{rng: rand.New(rand.NewPCG(seed, seed+1)), players: make(map[string]*player)}
	g.star = g.randomPoint(starR)
	return g
}

// deliver receives the events of GameInputChannel from the broker. It never
// blocks: when the inbox is full, inputs are dropped (a later input
// supersedes them anyway); joins and leaves are always kept.
func (g *game) deliver(ev hub.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.inbox) >= maxInbox && ev.Type == hub.EventPublication {
		g.dropped++
		return
	}
	g.inbox = append(g.inbox, ev)
}

// drain takes the events delivered since the last tick.
func (g *game) drain() []hub.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	evs := g.inbox
	g.inbox = nil
	return evs
}

// apply changes the arena by one event.
func (g *game) apply(ev hub.Event) {
	switch ev.Type {
	case hub.EventJoin:
		g.join(ev.Member)
	case hub.EventLeave:
		delete(g.players, ev.Member.ID)
	case hub.EventPublication:
		var in input
		if json.Unmarshal(ev.Publication.Data, &in) != nil {
			return
		}
		if from := ev.Publication.From; from != "" {
			in.ID = from // a client steers only its own player, whatever id it writes
		}
		if p := g.players[in.ID]; p != nil {
			p.dx, p.dy = direction(in.DX, in.DY)
			p.RTT = math.Round(math.Max(-1, math.Min(in.RTT, 60_000))*10) / 10
		}
	}
}

// join adds m to the arena at a random place, once.
func (g *game) join(m hub.Member) {
	if g.players[m.ID] != nil {
		return
	}
	at := g.randomPoint(playerR)
	g.players[m.ID] = &player{ID: m.ID, Name: playerName(m.Client), Color: playerColor(m), X: at.X, Y: at.Y, RTT: -1}
}

// step moves every player by dt and scores the star.
func (g *game) step(dt time.Duration) {
	g.tick++
	d := playerSpeed * dt.Seconds()
	for _, p := range g.players {
		p.X = math.Max(playerR, math.Min(arenaW-playerR, p.X+p.dx*d))
		p.Y = math.Max(playerR, math.Min(arenaH-playerR, p.Y+p.dy*d))
		if math.Hypot(p.X-g.star.X, p.Y-g.star.Y) <= playerR+starR {
			p.Score++
			g.star = g.randomPoint(starR)
		}
	}
}

// snapshot is the arena as published.
func (g *game) snapshot() state {
	s := state{Tick: g.tick, W: arenaW, H: arenaH, Star: g.star, Players: make([]*player, 0, len(g.players))}
	for _, p := range g.players {
		c := *p
		c.X, c.Y = math.Round(p.X), math.Round(p.Y)
		s.Players = append(s.Players, &c)
	}
	return s
}

func (g *game) randomPoint(margin float64) point {
	return point{
		X: math.Round(margin + g.rng.Float64()*(arenaW-2*margin)),
		Y: math.Round(margin + g.rng.Float64()*(arenaH-2*margin)),
	}
}

// direction clamps (dx, dy) to the unit disc.
func direction(dx, dy float64) (float64, float64) {
	if math.IsNaN(dx) || math.IsNaN(dy) {
		return 0, 0
	}
	if n := math.Hypot(dx, dy); n > 1 {
		return dx / n, dy / n
	}
	return dx, dy
}

func playerName(client string) string {
	r := []rune(client)
	if len(r) == 0 {
		return "player"
	}
	return string(r[:min(len(r), maxName)])
}

var colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// playerColor is the color in the member's info, or one derived from its id.
func playerColor(m hub.Member) string {
	var info struct {
		Color string `json:"color"`
	}
	if json.Unmarshal(m.Info, &info) == nil && colorRE.MatchString(info.Color) {
		return info.Color
	}
	h := fnv.New32a()
	h.Write([]byte(m.ID))
	return fmt.Sprintf("hsl(%d 70%% 55%%)", h.Sum32()%360)
}

// runGame runs the tick until ctx ends: it subscribes to GameInputChannel
// through h, seeds the players from its presence, then every GameTick applies the
// events received, moves everyone and publishes the state.
func runGame(ctx context.Context, h *hub.Hub) error {
	g := newGame(uint64(time.Now().UnixNano()))
	unsubscribe, err := h.Subscribe(ctx, GameInputChannel, g.deliver)
	if err != nil {
		return fmt.Errorf("web: game: subscribe %s: %w", GameInputChannel, err)
	}
	defer unsubscribe()
	if members, err := h.Members(ctx, GameInputChannel); err == nil {
		for _, m := range members {
			g.join(m)
		}
	}
	t := time.NewTicker(GameTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := g.advance(ctx, h); err != nil {
				return err
			}
		}
	}
}

// advance runs one tick and publishes its state; only a closed broker is
// an error.
func (g *game) advance(ctx context.Context, h *hub.Hub) error {
	for _, ev := range g.drain() {
		g.apply(ev)
	}
	g.step(GameTick)
	data, _ := json.Marshal(g.snapshot())
	if _, err := h.Publish(ctx, GameStateChannel, data, hub.PublishOptions{}); errors.Is(err, hub.ErrClosed) {
		return err
	}
	return nil
}
