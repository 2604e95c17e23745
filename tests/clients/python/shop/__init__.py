"""A tiny Django shop (project settings and the app in one package) for the real-client scenarios."""
