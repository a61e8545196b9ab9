package chat

import (
	"regexp"
	"strings"
	"testing"
)

func TestDeviceID(t *testing.T) {
	shape := regexp.MustCompile(`^chat-[A-Za-z0-9-]{1,32}-[0-9a-f]{8}$`)
	base := deviceID("laptop.example.com", "ann", "alice")
	if base != deviceID("laptop.example.com", "ann", "ALICE") {
		t.Fatal("the chat user is not folded as the server folds it")
	}
	tests := []struct {
		name                    string
		host, account, chatUser string
		wantPrefix              string
	}{
		{name: "first host label", host: "laptop.example.com", account: "ann", chatUser: "alice",
			wantPrefix: "chat-laptop-"},
		{name: "another OS user", host: "laptop.example.com", account: "bob", chatUser: "alice",
			wantPrefix: "chat-laptop-"},
		{name: "another chat user", host: "laptop.example.com", account: "ann", chatUser: "carl",
			wantPrefix: "chat-laptop-"},
		{name: "long host cut", host: strings.Repeat("h", 253), account: "ann", chatUser: "alice",
			wantPrefix: "chat-" + strings.Repeat("h", 32) + "-"},
		{name: "odd host characters dropped", host: "my_box\x1b!", account: "ann",
			chatUser: "alice", wantPrefix: "chat-mybox-"},
		{name: "nothing left of the host", host: "…", account: "ann", chatUser: "alice",
			wantPrefix: "chat-host-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := deviceID(tt.host, tt.account, tt.chatUser)
			if !shape.MatchString(id) || !strings.HasPrefix(id, tt.wantPrefix) {
				t.Fatalf("deviceID = %q, want %s<8 hex>", id, tt.wantPrefix)
			}
			if id != deviceID(tt.host, tt.account, tt.chatUser) {
				t.Fatal("not stable")
			}
			if id == base && tt.host+tt.account+tt.chatUser != "laptop.example.comannalice" {
				t.Fatalf("%q is the id of another host, OS user or chat user", id)
			}
		})
	}
}
