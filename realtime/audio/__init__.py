"""Voice: server-side spatial mixing of WebRTC audio, run in a media worker process."""
