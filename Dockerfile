# The smsdispatch image used by docker-compose.yml (worker and simulator): `smsdispatch` is the entrypoint.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY smsdispatch ./smsdispatch
RUN pip install --no-cache-dir . && useradd --create-home smsdispatch

# The worker keeps its local state (Faust's table stores) in the user's home.
USER smsdispatch
ENTRYPOINT ["smsdispatch"]
CMD ["--help"]
