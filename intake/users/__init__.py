"""Users: the model, the services that change accounts, and (later) the admin views."""
