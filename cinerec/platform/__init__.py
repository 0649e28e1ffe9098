"""The platform floor: one client per outside system, made from settings, for every component
above it. ``kafka`` (producers, consumers, admin clients; the project's topics and the privacy
topic), ``elasticsearch`` (the client over one or several nodes, health), ``registry`` (MLflow's
model registry: register, promote, roll back), ``spark`` (the Spark session), ``accounts`` (the
account database of the web app's people)."""
