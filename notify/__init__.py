"""Notifications: channels (Apprise URLs) that hear about what needs the team, sent by the worker."""
