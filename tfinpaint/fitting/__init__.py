"""The fitting: the Inpainter and its losses, the fit loop, and the progressive ladder."""
