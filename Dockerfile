# One image for every process of a Sorcha node (web, worker, beat); the command picks the process.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY manage.py Procfile ./
COPY sorcha_site sorcha_site
COPY registers registers
COPY peers peers
COPY tasks tasks

RUN useradd --create-home --uid 10001 sorcha && mkdir -p /app/var && chown -R sorcha /app/var
USER sorcha

EXPOSE 8000
CMD ["gunicorn", "sorcha_site.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2"]
