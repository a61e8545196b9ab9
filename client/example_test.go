package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/resonance-im/resonance/client"
)

// A connection of its own registers, logs in and manages the account. The
// examples need a server, so they are compiled but not run.
func ExampleDial() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "127.0.0.1:7000", client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Register is allowed before Login; a name taken fails with USERNAME_TAKEN.
	if _, err := c.Register(ctx, "alice", "alice-secret"); err != nil {
		log.Print(err)
	}
	_, err = c.Login(ctx, client.LoginParams{Username: "alice", Password: "alice-secret",
		DeviceID: "laptop", Platform: "go"})
	if err != nil {
		log.Fatal(err)
	}

	nick := "Alice"
	if _, err := c.UpdateProfile(ctx, client.ProfileParams{Nickname: &nick}); err != nil {
		log.Fatal(err)
	}
	users, err := c.SearchUsers(ctx, "bob", 10) // a prefix of at least 3 characters
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range users {
		fmt.Println(u.UserId, u.Username, u.Nickname)
	}

	// Sign out every other device: each is closed with SIGNED_OUT.
	devices, err := c.ListDevices(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range devices {
		if !d.Current {
			if err := c.SignOutDevice(ctx, d.DeviceId); err != nil {
				log.Print(err)
			}
		}
	}

	// A new password signs out the other devices too; this connection stays.
	if _, err := c.ChangePassword(ctx, "alice-secret", "alice-new-secret"); err != nil {
		log.Fatal(err)
	}

	// Logout revokes this device's tokens; the server then closes the
	// connection with SIGNED_OUT.
	if err := c.Logout(ctx); err != nil {
		log.Fatal(err)
	}
	<-c.Done()
	fmt.Println(c.Err())
}

// A Session is what an app keeps open: it reconnects, resumes and hands
// over every message once, in order, its own sends included.
func ExampleOpenSession() {
	ctx := context.Background()
	s, err := client.OpenSession(ctx, client.SessionConfig{
		Addr:  "127.0.0.1:7000",
		Login: client.LoginParams{Username: "alice", Password: "alice-secret", DeviceID: "laptop"},
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for m := range s.Messages() {
			fmt.Printf("%s #%d from %d: %s\n", m.ConvId, m.Seq, m.SenderId, m.Content)
		}
	}()

	c, err := s.Client(ctx) // for calls the Session does not wrap
	if err != nil {
		log.Fatal(err)
	}
	bob, err := c.GetUser(ctx, "bob")
	if err != nil {
		log.Fatal(err)
	}
	// The conversation is p2p:<lower id>:<higher id>; ToUserID names it too.
	fmt.Println(client.P2PConvID(s.UserID(), bob.UserId))
	if _, err := s.Send(ctx, client.SendParams{ToUserID: bob.UserId, Text: "hi bob"}); err != nil {
		log.Fatal(err)
	}

	// Logout reports what was handed over, then signs the device out; use
	// Close instead to stay signed in for the next run.
	if err := s.Logout(ctx); errors.Is(err, client.ErrLogoutUnconfirmed) {
		log.Print("the server did not confirm; sign this device out from another one")
	}
}
