"""What a failed Spark job tells the user (no JVM needed: the message is built from text)."""

from __future__ import annotations

from sessionrec.data.spark.session import spark_failure


def test_first_line_only_and_no_hint_for_an_ordinary_failure():
    text = "Job aborted: division by zero\n\tat org.apache.spark.Foo(Foo.scala:1)\n\tat ..."
    assert spark_failure(text) == "the Spark job failed: Job aborted: division by zero"


def test_out_of_memory_names_the_setting_to_raise():
    text = ("Job aborted due to stage failure: Task 3 in stage 723.0 failed 1 times, most recent "
            "failure: Lost task 3.0: java.lang.OutOfMemoryError: Java heap space\n\nDriver "
            "stacktrace:")
    message = spark_failure(text)
    assert message.startswith("the Spark job failed: Job aborted due to stage failure")
    assert "--set spark.driver_memory=8g" in message and "--master URL" in message


def test_an_empty_error_still_says_what_failed():
    assert spark_failure("  ") == "the Spark job failed: unknown error"
