"""What runs inside an attempt: in a worker, a supervised process or a pod."""
