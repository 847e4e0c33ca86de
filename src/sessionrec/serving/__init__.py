"""Live serving: stateless model step, id-mapping middleware, state store, REST API.

``sessionrec serve --model RUN_DIR`` runs :func:`sessionrec.serving.app.create_app`; see
docs/serving.md.
"""
