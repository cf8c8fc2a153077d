// Command go_tick_server is the bench's grpc-go reference: what a user who
// picks grpc-go instead of the greeter would write for the same contract,
// plainly. SayHello as ours; SayHelloStreamReply sends each subscriber one
// personalised "hello NAME, it's YYYY-MM-DD HH:MM:SS" (server local time,
// with the tick's time_ms) per tick of -interval, from the call's own
// goroutine (a subscriber still sending when the next tick comes gets the
// latest tick, as one ticker's channel would give it); Subscribe and Publish
// as the bare grpc-js baseline: every Publish goes to every subscriber,
// through a 128-event buffer per subscriber that drops what does not fit.
// No validation, no auth, no replay. Prints "listening on PORT" to stderr.
//
// The bench builds it at bench time in GOPATH mode from Debian's
// golang-go, golang-google-grpc-dev and golang-goprotobuf-dev (see
// bench/go_server.ts); the generated helloworld package is not committed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	pb "gotick/helloworld"
)

// tick is one clock tick: its time, and a channel closed when the next one
// replaces it.
type tick struct {
	timeMs int64
	stamp  string
	next   chan struct{}
}

// clock publishes a tick every interval to every waiting subscriber.
type clock struct {
	mu      sync.Mutex
	current *tick
}

func (c *clock) latest() *tick {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

func (c *clock) run(interval time.Duration) {
	ticker := time.NewTicker(interval)
	for now := range ticker.C {
		t := &tick{
			timeMs: now.UnixMilli(),
			stamp:  now.Format("2006-01-02 15:04:05"),
			next:   make(chan struct{}),
		}
		c.mu.Lock()
		previous := c.current
		c.current = t
		c.mu.Unlock()
		close(previous.next)
	}
}

// bus hands every published event to every Subscribe call's buffer.
type bus struct {
	mu          sync.Mutex
	seq         uint64
	subscribers map[chan *pb.Event]struct{}
}

type server struct {
	pb.UnimplementedGreeterServer
	clock *clock
	bus   *bus
}

func (s *server) SayHello(_ context.Context, r *pb.HelloRequest) (*pb.HelloReply, error) {
	return &pb.HelloReply{Message: "Hello, " + r.Name + "!"}, nil
}

func (s *server) SayHelloStreamReply(r *pb.HelloRequest, stream pb.Greeter_SayHelloStreamReplyServer) error {
	done := stream.Context().Done()
	t := s.clock.latest()
	for {
		select {
		case <-done:
			return nil
		case <-t.next:
		}
		t = s.clock.latest()
		reply := &pb.HelloReply{
			Message: "hello " + r.Name + ", it's " + t.stamp,
			TimeMs:  t.timeMs,
		}
		if err := stream.Send(reply); err != nil {
			return err
		}
	}
}

const epoch = "go"

func (s *server) Subscribe(_ *pb.SubscribeRequest, stream pb.Greeter_SubscribeServer) error {
	events := make(chan *pb.Event, 128)
	s.bus.mu.Lock()
	first := &pb.FirstGreetingMessage{Cursor: &pb.Cursor{Epoch: epoch, Seq: s.bus.seq}}
	s.bus.subscribers[events] = struct{}{}
	s.bus.mu.Unlock()
	defer func() {
		s.bus.mu.Lock()
		delete(s.bus.subscribers, events)
		s.bus.mu.Unlock()
	}()
	err := stream.Send(&pb.GreetingMessage{
		ShapeType: &pb.GreetingMessage_FirstGreetingMessage{FirstGreetingMessage: first},
	})
	if err != nil {
		return err
	}
	done := stream.Context().Done()
	for {
		select {
		case <-done:
			return nil
		case e := <-events:
			// Each call encodes its own copy: grpc-go marshals on Send, and
			// golang/protobuf caches sizes in the message it marshals.
			copied := *e
			err := stream.Send(&pb.GreetingMessage{
				ShapeType: &pb.GreetingMessage_Event{Event: &copied},
			})
			if err != nil {
				return err
			}
		}
	}
}

func (s *server) Publish(_ context.Context, r *pb.PublishRequest) (*pb.PublishReply, error) {
	now := time.Now().UnixMilli()
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.seq++
	e := pb.Event{Seq: s.bus.seq, Epoch: epoch, TimeMs: now, Topic: r.Topic, Payload: r.Payload}
	for events := range s.bus.subscribers {
		select {
		case events <- &e:
		default: // a full buffer drops the event
		}
	}
	return &pb.PublishReply{Cursor: &pb.Cursor{Epoch: epoch, Seq: s.bus.seq}, TimeMs: now}, nil
}

func main() {
	port := flag.Int("port", 0, "port to listen on, 127.0.0.1 (0: any free one)")
	interval := flag.Int("interval", 10, "milliseconds between two ticks")
	flag.Parse()
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatalf("Cannot listen on port %d: %v", *port, err)
	}
	c := &clock{current: &tick{next: make(chan struct{})}}
	go c.run(time.Duration(*interval) * time.Millisecond)
	s := grpc.NewServer()
	pb.RegisterGreeterServer(s, &server{
		clock: c,
		bus:   &bus{subscribers: map[chan *pb.Event]struct{}{}},
	})
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		s.Stop()
	}()
	fmt.Fprintf(os.Stderr, "listening on %d\n", listener.Addr().(*net.TCPAddr).Port)
	if err := s.Serve(listener); err != nil {
		log.Fatalf("Cannot serve: %v", err)
	}
}
