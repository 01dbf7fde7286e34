package container

import (
	"io"
	"net/http"

	"skiffd/internal/api/types"
	"skiffd/internal/api/wire"
	"skiffd/internal/errdefs"
	"skiffd/internal/websocket"
)

// AttachWebsocket answers GET /containers/{id}/attach/ws as dockerd's
// postContainersAttachWebsocket does: after the engine has validated the
// attach, the connection becomes a websocket carrying the raw streams,
// never multiplexed (stdout and stderr share it), with binary frames from
// API 1.28 on and text frames before. Before 1.42 stdin, stdout and stderr
// are always attached; from 1.42 the query chooses them, as for attach.
func AttachWebsocket(b Backend) wire.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := websocket.Check(r); err != nil {
			return errdefs.InvalidParameter(err)
		}
		stdin, stdout, stderr := true, true, true
		if !wire.VersionLess(r.Context(), "1.42") {
			stdin, stdout, stderr = wire.BoolValue(r, "stdin"), wire.BoolValue(r, "stdout"), wire.BoolValue(r, "stderr")
		}
		var conn *websocket.Conn
		var untrack func()
		cfg := &types.AttachConfig{
			Stdin: stdin, Stdout: stdout, Stderr: stderr,
			Logs: wire.BoolValue(r, "logs"), Stream: wire.BoolValue(r, "stream"), DetachKeys: r.URL.Query().Get("detachKeys"),
			GetStreams: func(tty bool) (io.ReadCloser, io.Writer, io.Writer, error) {
				c, err := websocket.Upgrade(w, r)
				if err != nil {
					return nil, nil, nil, err
				}
				c.Binary = !wire.VersionLess(r.Context(), "1.28")
				conn = c
				untrack = wire.TrackHijacked(r.Context(), func() { c.NetConn().Close() })
				return c, c, c, nil
			},
		}
		err := b.ContainerAttach(r.Context(), r.PathValue("id"), cfg)
		if conn == nil {
			return err
		}
		untrack()
		conn.Close()
		return nil
	}
}
