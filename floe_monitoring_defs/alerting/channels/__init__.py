"""Built-in alert channels, one module per channel type, registered under `floe.alert_channels`.

`base` holds the plugin interface; `common` the helpers they share (HTTP delivery with the retry
classification the outbox relies on, RFC 3339 times, truncation, config checks). Importing this
package imports no channel: `base.channel_types()` loads them through their entry points.
"""
