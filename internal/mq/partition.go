package mq

import (
	"fmt"
	"strconv"
)

// Message events are split by conversation into Partitions subjects,
// Subject + ".msg.<p>", so that task can give each partition to one
// instance at a time and push a conversation's events in stream order with
// any number of instances (see task's package comment).
//
// Changing Partitions remaps conversations to other subjects: a
// conversation's events would then sit in two partitions, which two
// instances may push in parallel. Change it only with the stream drained
// (every task consumer caught up and logic stopped), like the subject change
// from the single Subject + ".msg" of earlier builds.
const Partitions = 32

// ConvHash is FNV-1a over a conversation id: stable across processes and
// builds, and allocation-free. Partition takes it modulo Partitions; task
// spreads a partition's conversations over its workers with the bits above.
func ConvHash(convID string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(convID); i++ {
		h ^= uint32(convID[i])
		h *= 16777619
	}
	return h
}

// Partition returns the partition of convID's message events, in
// [0, Partitions).
func Partition(convID string) int { return int(ConvHash(convID) % Partitions) }

// MessageSubject is the subject logic publishes convID's message events on:
// the subject of its partition.
func (n Names) MessageSubject(convID string) string {
	return n.PartitionSubject(Partition(convID))
}

// PartitionSubject is the subject of partition p's message events.
func (n Names) PartitionSubject(p int) string { return n.Subject + ".msg." + strconv.Itoa(p) }

// MessageSubjects matches the message events of every partition.
func (n Names) MessageSubjects() string { return n.Subject + ".msg.>" }

// LegacyMessageSubject is where builds before partitions published every
// message event; nothing publishes there now. Task only checks at start
// that the old consumer of it has drained.
func (n Names) LegacyMessageSubject() string { return n.Subject + ".msg" }

// PartitionConsumer is the durable consumer of partition p, shared by task
// instances: the one that holds p's lease pulls from it.
func (n Names) PartitionConsumer(p int) string { return fmt.Sprintf("%s_p%02d", n.Consumer, p) }

// LeaseBucket is the JetStream key-value bucket in which task instances
// hold partition leases.
func (n Names) LeaseBucket() string { return n.Stream + "_TASKS" }

// LeaseStream is the stream that holds LeaseBucket, beside the events
// stream; delete both to remove a deployment from a NATS server.
func (n Names) LeaseStream() string { return "KV_" + n.LeaseBucket() }
