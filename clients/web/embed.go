// Package web holds the browser client's files, the JavaScript SDK (sdk/)
// and the chat app (app/), embedded as they are: they are plain ES modules
// with no build step. internal/webui serves them.
package web

import "embed"

// Files is the app and SDK: app/index.html is the page, sdk/index.js the
// SDK's entry module. The tests and their node_modules are not embedded.
//
//go:embed app sdk
var Files embed.FS
