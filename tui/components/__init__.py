"""One widget or screen per module; each posts small messages that the app routes."""
