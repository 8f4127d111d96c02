"""Stand-ins for the cloud services that cannot be reached from here (see DESIGN.md).

Each is a real server process or an HTTP stub reached by the vendor's real client:
``fakesnow_plus`` (Snowflake), ``bqemu_process`` and ``slowjobs`` (BigQuery),
``moto_sagemaker`` (SageMaker and S3), ``gcs`` (Google Cloud Storage).
"""
