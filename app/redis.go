package app

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// bindRedis defines the Redis flags. A lone gateway uses Redis only for the
// gateway registry, so its help says what going without costs.
func bindRedis(fs *flag.FlagSet, c *Config, role Role) {
	var usage string
	switch role {
	case RoleAll:
		usage = "Redis address of routes, presence watches and the gateway registry, or " +
			"comma-separated seed addresses of a Redis Cluster; empty keeps them in process"
	case RoleLogic:
		usage = "Redis address of routes and presence watches, or comma-separated seed " +
			"addresses of a Redis Cluster (required)"
	case RoleTask:
		usage = "Redis address of routes, presence watches and the gateway registry, or " +
			"comma-separated seed addresses of a Redis Cluster (required)"
	case RoleGateway:
		usage = "Redis address (or comma-separated Redis Cluster seeds) of the gateway registry; " +
			"empty: this gateway does not register, so after it dies task waits out a push " +
			"timeout per call instead of skipping it"
	}
	fs.StringVar(&c.RedisAddr, "redis-addr", "", usage)
	fs.BoolVar(&c.RedisCluster, "redis-cluster", false,
		"--redis-addr is a Redis Cluster even when it names one seed address "+
			"(several addresses always are)")
	fs.StringVar(&c.RedisPassword, "redis-password", "", "Redis password")
	fs.IntVar(&c.RedisDB, "redis-db", 0, "Redis database number (standalone Redis only)")
}

// redisAddrs returns the addresses listed in RedisAddr.
func (c *Config) redisAddrs() []string { return splitList(c.RedisAddr) }

// redisClusterMode reports whether the process talks to a Redis Cluster:
// several seed addresses, or RedisCluster.
func (c *Config) redisClusterMode() bool {
	return c.RedisCluster || len(c.redisAddrs()) > 1
}

// validateRedis checks the Redis settings before anything connects.
func (c *Config) validateRedis() error {
	if c.RedisDB < 0 {
		return fmt.Errorf("%w: --redis-db %d is negative", ErrConfig, c.RedisDB)
	}
	addrs := c.redisAddrs()
	if len(addrs) == 0 {
		if c.RedisAddr != "" {
			return fmt.Errorf("%w: --redis-addr %q names no address", ErrConfig, c.RedisAddr)
		}
		if c.RedisCluster {
			return fmt.Errorf("%w: --redis-cluster needs --redis-addr", ErrConfig)
		}
		return nil
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%w: --redis-addr %q: %v", ErrConfig, a, err)
		}
	}
	if c.redisClusterMode() && c.RedisDB != 0 {
		return fmt.Errorf("%w: --redis-db %d: a Redis Cluster has only database 0 "+
			"(separate deployments with --prefix)", ErrConfig, c.RedisDB)
	}
	return nil
}

// connectRedis opens the Redis client once: routes, presence watches and
// the gateway registry share it. In cluster mode it is a cluster client,
// which learns the other nodes from whichever seed answers and sends each
// command to the master of its key's slot.
func (s *System) connectRedis(ctx context.Context) error {
	if s.rdb != nil {
		return nil
	}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         s.cfg.redisAddrs(),
		IsClusterMode: s.cfg.redisClusterMode(),
		Password:      s.cfg.RedisPassword,
		DB:            s.cfg.RedisDB,
	})
	if err := checkRedis(ctx, rdb, s.cfg.RedisAddr); err != nil {
		rdb.Close()
		return err
	}
	s.rdb = rdb
	return nil
}

// checkRedis pings rdb and refuses a standalone client on a cluster node:
// it would reach only the slots of that node and fail every other key with
// MOVED, an outage that shows only for some users.
func checkRedis(ctx context.Context, rdb redis.UniversalClient, addr string) error {
	_, cluster := rdb.(*redis.ClusterClient)
	if err := rdb.Ping(ctx).Err(); err != nil {
		if cluster {
			return fmt.Errorf("app: redis cluster %s: %w", addr, err)
		}
		return fmt.Errorf("app: redis %s: %w", addr, err)
	}
	if cluster {
		return nil
	}
	// A server or proxy that refuses INFO is taken as standalone.
	info, err := rdb.Info(ctx, "cluster").Result()
	if err == nil && strings.Contains(info, "cluster_enabled:1") {
		return fmt.Errorf("%w: redis %s is a Redis Cluster node: set --redis-cluster "+
			"(or list several seed addresses in --redis-addr)", ErrConfig, addr)
	}
	return nil
}
