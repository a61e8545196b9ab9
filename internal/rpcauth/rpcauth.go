// Package rpcauth owns the optional shared secret between Resonance's
// internal Kitex services. A client built with ClientOptions sends the secret
// in a TTHeader transient value on every call; a server built with
// ServerOptions refuses any call that lacks it. With an empty secret both
// return no options, so a deployment that keeps the internal ports private
// by network alone pays nothing.
package rpcauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"

	"github.com/bytedance/gopkg/cloud/metainfo"
	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/endpoint"
	"github.com/cloudwego/kitex/pkg/transmeta"
	"github.com/cloudwego/kitex/server"
	"github.com/cloudwego/kitex/transport"
)

// metaKey names the transient metainfo value that carries the secret; it
// travels one hop only, so it is never forwarded beyond the callee.
const metaKey = "RESONANCE_INTERNAL_SECRET"

// ErrDenied is returned to a caller whose call lacks the configured secret.
// It says nothing about what was expected.
var ErrDenied = errors.New("rpcauth: call denied")

// ClientOptions returns the Kitex client options that send secret with
// every call: TTHeader transport, its meta handler and a middleware that sets
// the value. An empty secret returns nil.
func ClientOptions(secret string) []client.Option {
	if secret == "" {
		return nil
	}
	return []client.Option{
		client.WithTransportProtocol(transport.TTHeader),
		client.WithMetaHandler(transmeta.ClientTTHeaderHandler),
		client.WithMiddleware(func(next endpoint.Endpoint) endpoint.Endpoint {
			return func(ctx context.Context, req, resp any) error {
				return next(metainfo.WithValue(ctx, metaKey, secret), req, resp)
			}
		}),
	}
}

// ServerOptions returns the Kitex server options that refuse calls without
// secret with ErrDenied before any handler runs. An empty secret returns nil.
func ServerOptions(secret string) []server.Option {
	if secret == "" {
		return nil
	}
	// Comparing digests keeps the comparison constant-time even when the
	// lengths differ.
	want := sha256.Sum256([]byte(secret))
	return []server.Option{
		server.WithMetaHandler(transmeta.ServerTTHeaderHandler),
		server.WithMiddleware(func(next endpoint.Endpoint) endpoint.Endpoint {
			return func(ctx context.Context, req, resp any) error {
				got, _ := metainfo.GetValue(ctx, metaKey)
				sum := sha256.Sum256([]byte(got))
				if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
					return ErrDenied
				}
				return next(ctx, req, resp)
			}
		}),
	}
}
