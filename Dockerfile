# The turnout app image: the same image runs `turnout worker`, `turnout web` and `turnout topics ensure`.
FROM python:3.11.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 turnout
WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY contracts ./contracts
COPY streams ./streams
COPY agents ./agents
COPY connectors ./connectors
RUN pip install -c constraints.txt .
USER turnout
EXPOSE 8000
CMD ["turnout", "--help"]
