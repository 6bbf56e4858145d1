"""The failure catalogue: the shipped rules load, match real log wording, and bad rule files are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emr_triage.analysis.catalogue import Catalogue, Rule, load_catalogue
from emr_triage.exceptions import CatalogueError


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


# Real wording, per rule, from shared/reference/failure-signatures.md and public issue threads (Spark 1 to 3,
# Hadoop 2 and 3, EMR and EMR Serverless); the fixtures under tests/fixtures/logs show them in context.
EXAMPLES: dict[str, list[str]] = {
    "bootstrap_action_failed": [
        "On the master instance (i-02093432d9c865f08), bootstrap action 1 returned a non-zero return code",
        "BOOTSTRAP_FAILURE: i-0e1d2c3b4a5f60718: failed to start. bootstrap action 3 failed with non-zero exit code.",
        "Master instance (i-0000000000000000) failed attempting to download bootstrap action 1 file from S3",
        "2020-11-20T07:04:05.133Z ERROR Source: BOOTSTRAP_ACTION | ErrorCode: SCRIPT_EXECUTION_FAILED_CODE | "
        "Execution for s3://ap-northeast-2.elasticmapreduce/bootstrap-actions/run-if failed with code '1'",
        "SHUTTING_DOWN [On the master instance (i-3f33d270), bootstrap action 1 timed out executing]",
    ],
    "ec2_capacity_unavailable": [
        "Cluster j-2QWERTY12345 TERMINATING: INTERNAL_ERROR_EC2_INSUFFICIENT_CAPACITY_AZ",
        "EC2 provisioning - Insufficient Instance Capacity",
        "We currently do not have sufficient r5.4xlarge capacity in the Availability Zone you requested (us-east-1a).",
        "Failed to provision instances for the primary node: INTERNAL_ERROR_SPOT_NO_CAPACITY_PRIMARY",
        "An error occurred (InsufficientInstanceCapacity) when calling the RunInstances operation",
    ],
    "yarn_container_above_max_allocation": [
        "java.lang.IllegalArgumentException: Required executor memory (16384 MB), offHeap memory (0) MB, overhead "
        "(1638 MB), and PySpark memory (0 MB) is above the max threshold (12288 MB) of this cluster! Please check the "
        "values of 'yarn.scheduler.maximum-allocation-mb' and/or 'yarn.nodemanager.resource.memory-mb'.",
        "java.lang.IllegalArgumentException: Required AM memory (20480+2048 MB) is above the max threshold "
        "(12288 MB) of this cluster!",
    ],
    "no_resources_accepted": [
        "diagnostics: Application is added to the scheduler and is not yet activated. Skipping AM assignment as "
        "cluster resource is empty.",
        "19/08/18 15:18:09 WARN DAGScheduler: The job 2 requires to run a barrier stage that requires more slots "
        "than the total number of slots in the cluster currently.",
        "20/10/13 09:00:27 WARN YarnScheduler: Initial job has not accepted any resources; check your cluster UI to "
        "ensure that workers are registered and have sufficient resources",
    ],
    "am_container_lost_node": [
        "Application application_1683190000000_0007 failed 1 times due to AM Container for "
        "appattempt_1683190000000_0007_000001 exited with  exitCode: -100",
    ],
    "node_lost_spot": [
        "23/05/04 10:05:00 WARN YarnAllocator: Container released on a *lost* node",
        "23/05/04 10:05:00 WARN YarnAllocator: Container marked as failed: container_1683190000000_0007_01_000004 "
        "on host: ip-10-0-1-23.ec2.internal. Exit status: -100. Diagnostics: Container released on a *lost* node.",
        "23/05/04 10:05:00 INFO ExecutorMonitor: Executor decommission: Spot instance interruption",
        "2023-11-02 04:26:31,553 INFO org.apache.hadoop.yarn.server.resourcemanager.rmnode.RMNodeImpl: Deactivating "
        "Node ip-10-0-33-201.ec2.internal:8041 as it is now LOST",
        "2023-11-02 04:26:31,553 INFO RMNodeImpl: ip-10-0-33-201.ec2.internal:8041 Node Transitioned from RUNNING "
        "to LOST",
    ],
    "node_decommissioned": [
        "23/05/04 10:05:00 INFO YarnAllocator: Yarn node state updated for host ip-10-0-1-23.ec2.internal "
        "to DECOMMISSIONING",
        "22/05/28 01:25:29 ERROR TaskSchedulerImpl: Lost executor 8 on 100.103.40.13: Executor decommission.",
    ],
    "application_killed": [
        "\t diagnostics: Application application_1722826800000_0140 was killed by user hadoop at 10.20.0.15",
        "\t final status: KILLED",
        "24/08/05 05:59:51 INFO Client: Application report for application_1722826800000_0140 (state: KILLED)",
        "2023-10-10T06:00:02.871Z INFO Step cancelled with exitCode 143 and took 7201 seconds",
        "Application killed by user.",
    ],
    "yarn_preemption": [
        "Container preempted by scheduler",
        "22/10/03 13:18:44 INFO YarnAllocator: Container container_1664800000000_0318_01_000022 on host: "
        "ip-10-7-5-61.ec2.internal was preempted.",
        "Container marked as failed: container_1664800000000_0318_01_000022 on host: ip-10-7-5-61.ec2.internal. "
        "Exit status: -102. Diagnostics: Container preempted by scheduler",
    ],
    "am_container_memory_kill": [
        "\t diagnostics: Application application_1763510000000_0051 failed 2 times due to AM Container for "
        "appattempt_1763510000000_0051_000002 exited with  exitCode: -104",
        "Application application_1 failed 2 times due to AM Container for appattempt_1_000002 exited with "
        "exitCode: 137",
    ],
    "yarn_memory_kill": [
        # Spark 3
        "Container killed by YARN for exceeding physical memory limits. 5.5 GB of 5.5 GB physical memory used. "
        "Consider boosting spark.executor.memoryOverhead.",
        # Spark 2
        "Container killed by YARN for exceeding memory limits. 33.2 GB of 33 GB physical memory used. Consider "
        "boosting spark.yarn.executor.memoryOverhead or disabling yarn.nodemanager.vmem-check-enabled because "
        "of YARN-4714.",
        "container killed by yarn for exceeding virtual memory limits",
        # Hadoop 3 NodeManager
        "Container [pid=4242,containerID=container_1683190000000_0007_01_000002] is running 123456789B beyond "
        "the 'PHYSICAL' memory limit. Current usage: 5.6 GB of 5.5 GB physical memory used; 7.2 GB of 27.5 GB "
        "virtual memory used. Killing container.",
        # Hadoop 2 NodeManager
        "Container [pid=4242,containerID=container_1683190000000_0007_01_000002] is running beyond virtual "
        "memory limits. Current usage: 1.1 GB of 2 GB physical memory used; 4.3 GB of 4.2 GB virtual memory used.",
    ],
    "container_exit_memory_limit": [
        "Container marked as failed: container_1_01_000004 on host: ip-10-0-1-23.ec2.internal. Exit status: -104.",
        "26/11/20 02:13:01 INFO YarnAllocator: Completed container container_1_0042_01_000008 on host: "
        "ip-10-0-1-23.ec2.internal (state: COMPLETE, exit status: -104)",
        "Exit status: -103. Diagnostics: KILLED_EXCEEDED_VMEM",
    ],
    "container_sigkill_137": [
        "22/02/22 15:02:23 ERROR YarnScheduler: Lost executor 38 on ip-172-31-39-85.us-east-2.compute.internal: "
        "Container from a bad node: container_1645539745894_0001_01_000074 on host: "
        "ip-172-31-39-85.us-east-2.compute.internal. Exit status: 137. Diagnostics: [2022-02-22 15:02:23.483]"
        "Container killed on request. Exit code is 137",
        "Container exited with a non-zero exit code 137",
        "The executor with id 3 exited with exit code 137(SIGKILL, possible container OOM).",
    ],
    "oom_heap": [
        "java.lang.OutOfMemoryError: Java heap space",
        "23/05/04 10:05:00 ERROR Executor: Exception in task 3.0 in stage 4.0 (TID 41): java.lang.OutOfMemoryError: "
        "GC overhead limit exceeded",
        "# java.lang.OutOfMemoryError: Java heap space",
        "MemoryError",
        'Exception in thread "dispatcher-event-loop-1" java.lang.OutOfMemoryError: GC overhead limit exceeded',
        "org.apache.spark.memory.SparkOutOfMemoryError: Unable to acquire 65536 bytes of memory, got 0",
        "23/08/14 06:52:18 WARN YarnAllocator: Container from a bad node: container_1691992800000_0031_01_000005 on "
        "host: ip-10-0-12-73.ec2.internal. Exit status: 52. Diagnostics: Exception from container-launch.",
    ],
    "disk_full": [
        "1/1 local-dirs have errors: [ /var/lib/hadoopdata/nm-local-dir : Cannot create directory ]",
        "java.io.IOException: No space left on device",
        "Most of the disks failed. 1/1 local-dirs usable space is below utilization percentage/no more usable space",
        "23/05/04 10:05:00 ERROR DiskBlockManager: Failed to create local dir in /mnt/yarn/usercache/hadoop/"
        "appcache/application_1683190000000_0007. Ignoring this directory.",
        "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException: The DiskSpace quota of /home/logsget is exceeded",
        "Container exited with a non-zero exit code 53. Error file: prelaunch.err.",
        "Container marked as failed: container_1_01_000004 on host: ip-10-0-1-23. Exit status: -101.",
    ],
    "driver_max_result_size": [
        "Total size of serialized results of 15 tasks (2.1 GiB) is bigger than spark.driver.maxResultSize (1024.0 MiB)",
        "2018-08-03 00:53:20,661 [task-result-getter-3] ERROR TaskSetManager - Total size of serialized results of "
        "2572 tasks (1062.8 MB) is bigger than spark.driver.maxResultSize (1024.0 MB)",
    ],
    "kryo_buffer_overflow": [
        "org.apache.spark.SparkException: Kryo serialization failed: Buffer overflow. Available: 0, required: 110. "
        "To avoid this, increase spark.kryoserializer.buffer.max value.",
        "Caused by: com.esotericsoftware.kryo.KryoException: Buffer overflow. Available: 0, required: 1",
    ],
    "task_not_serializable": [
        "org.apache.spark.SparkException: Task not serializable",
        "Caused by: java.io.NotSerializableException: org.postgresql.jdbc.PgConnection",
        "\t- object not serializable (class: com.acme.geo.HttpGeoClient, value: com.acme.geo.HttpGeoClient@4e2c1a)",
        "_pickle.PicklingError: Could not serialize object: RuntimeError: It appears that you are attempting to "
        "reference SparkContext from a broadcast variable, action, or transformation.",
    ],
    "too_many_open_files": [
        "java.io.IOException: Too many open files",
        "java.io.FileNotFoundException: /mnt/yarn/usercache/hadoop/appcache/blockmgr-c1d2/3f/temp_shuffle_8a1b "
        "(Too many open files)",
        "java.net.SocketException: Too many open files",
    ],
    "kerberos_auth": [
        "javax.security.sasl.SaslException: GSS initiate failed [Caused by GSSException: No valid credentials "
        "provided (Mechanism level: Failed to find any Kerberos tgt)]",
        "org.apache.hadoop.security.AccessControlException: Client cannot authenticate via:[TOKEN, KERBEROS]",
        "org.apache.hadoop.ipc.RemoteException(org.apache.hadoop.security.token.SecretManager$InvalidToken): token "
        "(HDFS_DELEGATION_TOKEN token 88123 for svc_stream) is expired",
        "javax.security.auth.login.LoginException: Unable to obtain password from user",
        "KrbException: Clock skew too great (37)",
    ],
    "s3_access_denied": [
        "Error while Describe stream The security token included in the request is invalid. (Service: AmazonKinesis)",
        "com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; "
        "Error Code: AccessDenied; Request ID: 7TQW3Y2KB8AH)",
        "Caused by: java.nio.file.AccessDeniedException: s3://example-bucket/out/part-0000.parquet: PutObject",
        "User: arn:aws:sts::123456789012:assumed-role/EMR_EC2_DefaultRole/i-0abc is not authorized to perform: "
        "s3:PutObject on resource: arn:aws:s3:::example-bucket/out/part-0000.parquet",
        "com.amazonaws.services.s3.model.AmazonS3Exception: Forbidden (Service: Amazon S3; Status Code: 403; "
        "Error Code: 403 Forbidden; Request ID: 9N7QF3W1A2B3C4D5)",
        "software.amazon.awssdk.services.s3.model.S3Exception: Access Denied (Service: S3, Status Code: 403, "
        "Request ID: 2QX7KJ8A3B9C1D0E)",
        "AmazonS3Exception: The provided token has expired. (Service: Amazon S3; Status Code: 400; Error Code: "
        "ExpiredToken; Request ID: 1)",
    ],
    "permission_denied": [
        "  cannot open file 'C:\\Users\\me\\AppData\\Local\\Temp\\file1e88_spark.log': Permission denied",
        "org.apache.hadoop.security.AccessControlException: Permission denied: user=analyst, access=WRITE, "
        'inode="/user":hdfs:hadoop:drwxr-xr-x',
        "com.amazonaws.services.glue.model.AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/"
        "EMR_EC2_RestrictedRole/i-0123 is not authorized to perform: glue:GetDatabase on resource: "
        "arn:aws:glue:eu-west-1:123456789012:catalog (Service: AWSGlue; Status Code: 400; Error Code: "
        "AccessDeniedException)",
        "Unable to fetch table customers. Insufficient Lake Formation permission(s) on customers",
        'java.io.IOException: Cannot run program "/home/hadoop/run.sh": error=13, Permission denied',
        "PermissionError: [Errno 13] Permission denied: '/mnt/var/lib/acme/state.json'",
    ],
    "metastore_unavailable": [
        "java.sql.SQLException: Failed to start database 'metastore_db' with class loader org.apache",
        "Failed to connect to the MetaStore Server...",
        "java.lang.RuntimeException: Unable to instantiate "
        "org.apache.hadoop.hive.ql.metadata.SessionHiveMetaStoreClient",
        "MetaException(message:Could not connect to meta store using any of the URIs provided. Most recent failure: "
        "org.apache.thrift.transport.TTransportException: java.net.ConnectException: Connection refused",
        "com.amazonaws.services.glue.model.AWSGlueException: Rate exceeded (Service: AWSGlue; Status Code: 400; "
        "Error Code: ThrottlingException; Request ID: 5c2b9a11)",
    ],
    "glue_entity_not_found": [
        "com.amazonaws.services.glue.model.EntityNotFoundException: Table daily_fx_rates not found. (Service: "
        "AWSGlue; Status Code: 400; Error Code: EntityNotFoundException)",
        "org.apache.spark.sql.catalyst.analysis.NoSuchTableException: Table or view 'daily_fx_rates' not found in "
        "database 'reference'",
        "org.apache.spark.sql.catalyst.analysis.NoSuchDatabaseException: Database 'reporting' not found",
    ],
    "s3_throttling": [
        "com.amazonaws.services.s3.model.AmazonS3Exception: Please reduce your request rate. (Service: Amazon S3; "
        "Status Code: 503; Error Code: SlowDown; Request ID: 3B3C7DF1E2A4)",
        "com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception: Slow Down (Service: "
        "Amazon S3; Status Code: 503; Error Code: 503 Slow Down; Request ID: FS3ZPMHVXR7ACCC6)",
        "org.apache.hadoop.fs.s3a.AWSServiceThrottledException: getFileStatus on s3a://acme-logs/cloudfront/",
    ],
    "input_not_found": [
        "java.nio.file.NoSuchFileException: bundle.json",
        "org.apache.spark.sql.AnalysisException: Path does not exist: s3://acme-data/raw/2023-05-04",
        "[PATH_NOT_FOUND] Path does not exist: s3://acme-data/raw/2023-05-04.",
        "org.apache.hadoop.mapred.InvalidInputException: Input path does not exist: hdfs:///data/in",
        "org.apache.hadoop.mapred.InvalidInputException: Input Pattern s3://acme-data/raw/*.csv matches 0 files",
        "java.io.FileNotFoundException: No such file or directory 's3://acme-data/raw/orders/dt=2023-04-16'",
        "java.io.FileNotFoundException: File does not exist: /home/spark/spark_eventLog",
        "com.amazonaws.services.s3.model.AmazonS3Exception: The specified key does not exist. (Service: Amazon S3; "
        "Status Code: 404; Error Code: NoSuchKey; Request ID: 1)",
        "It is possible the underlying files have been updated. You can explicitly invalidate the cache in Spark by "
        "running 'REFRESH TABLE tableName' command in SQL or by recreating the Dataset/DataFrame involved.",
        "FileNotFoundError: [Errno 2] No such file or directory: '/home/hadoop/config.yaml'",
    ],
    "output_already_exists": [
        "org.apache.hadoop.mapred.FileAlreadyExistsException: Output directory s3://acme-curated/sales/daily "
        "already exists",
        '[PATH_ALREADY_EXISTS] Path s3://acme-curated/sales/daily already exists. Set mode as "overwrite" to '
        "overwrite the existing path.",
        "org.apache.spark.sql.AnalysisException: path s3://acme-curated/sales/daily/dt=2019-05-20 already exists.;",
        "org.apache.spark.SparkRuntimeException: [LOCATION_ALREADY_EXISTS] Cannot name the managed table as "
        "`spark_catalog`.`mart`.`daily_kpis`, as its associated location 's3://acme-warehouse/mart.db/daily_kpis' "
        "already exists.",
    ],
    "dependency_conflict": [
        "20/06/27 16:11:55 WARN SparkSubmit$$anon$2: **Failed to load org.apache.spark.deploy.dotnet.DotnetRunner**.",
        'java.io.IOException: Cannot run program "C:\\hadoop\\bin\\winutils.exe": CreateProcess error=216',
        "Error from python worker: /usr/bin/python2.7: No module named pyspark",
        "Error opening zip file or JAR manifest missing : /opt/monitoring/jmx_prometheus_javaagent.jar",
        "Message: <console>:18: error: not found: type GraphFrame",
        "java.lang.NoSuchMethodException: org.apache.spark.sql.execution.datasources.jdbc.DriverWrapper.<init>()",
        "java.util.ServiceConfigurationError: org.apache.spark.sql.sources.DataSourceRegister: Provider "
        "com.google.cloud.spark.bigquery.BigQueryRelationProvider could not be instantiated",
        "org.apache.logging.log4j.LoggingException: log4j-slf4j2-impl cannot be present with log4j-to-slf4j",
        "java.lang.UnsupportedOperationException: sun.misc.Unsafe or java.nio.DirectByteBuffer.<init>(long, int) not "
        "available",
        "java.lang.IllegalAccessError: class org.apache.spark.storage.StorageUtils$ (in unnamed module @0x1) cannot "
        "access class sun.nio.ch.DirectBuffer (in module java.base) because module java.base does not export "
        "sun.nio.ch",
        'org.apache.hadoop.fs.UnsupportedFileSystemException: No FileSystem for scheme "s3"',
        "java.lang.RuntimeException: [unresolved dependency: org.apache.spark#spark-avro_2.12;3.5.0: not found]",
        "Exception: Java gateway process exited before sending the driver its port number",
        "[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number.",
        "py4j.protocol.Py4JError: org.apache.spark.api.python.PythonUtils.getEncryptionEnabled does not exist in the "
        "JVM",
        "com.fasterxml.jackson.databind.JsonMappingException: Scala module 2.10.0 requires Jackson Databind version >= "
        "2.10.0 and < 2.11.0",
        "ImportError: PyArrow >= 4.0.0 must be installed; however, it was not found.",
        "java.lang.NoSuchMethodError: com.fasterxml.jackson.databind.ObjectMapper.readerFor(Ljava/lang/Class;)"
        "Lcom/fasterxml/jackson/databind/ObjectReader;",
        "java.lang.NoClassDefFoundError: Could not initialize class org.xerial.snappy.Snappy",
        "ModuleNotFoundError: No module named 'shapely'",
        "ImportError: cannot import name 'soft_unicode' from 'markupsafe'",
        "RuntimeError: Python in worker has different version 3.7 than that in driver 3.9, PySpark cannot run with "
        "different minor versions.",
        'Exception in thread "main" java.lang.UnsupportedClassVersionError: com/acme/billing/InvoiceJob has been '
        "compiled by a more recent version of the Java Runtime (class file version 61.0)",
        "java.lang.ClassNotFoundException: Failed to find data source: delta. Please find packages at "
        "http://spark.apache.org/third-party-projects.html",
        "Error: Could not find or load main class org.apache.spark.deploy.yarn.ExecutorLauncher",
    ],
    "class_not_found": [
        "Caused by: java.lang.ClassNotFoundException: com.mysql.cj.jdbc.Driver",
    ],
    "data_corruption": [
        "org.apache.spark.sql.avro.IncompatibleSchemaException: Cannot convert Avro type",
        "org.apache.parquet.io.ParquetDecodingException: Can not read value at 0 in block -1 in file "
        "s3://acme-lake/events/dt=2021-11-01/part-00012-77a1.c000.snappy.parquet",
        "java.lang.RuntimeException: s3://acme-lake/partner/feed.parquet is not a Parquet file. expected magic "
        "number at tail [80, 65, 82, 49] but found [110, 34, 125, 10]",
        "java.io.EOFException: Unexpected end of input stream",
        "org.apache.spark.sql.execution.QueryExecutionException: Parquet column cannot be converted in file "
        "s3://acme-lake/orders/part-00000.parquet. Column: [amount], Expected: decimal(18,2), Found: DOUBLE",
        "org.apache.hadoop.fs.ChecksumException: Checksum error: /data/part-0000 at 1048576 exp: 12 got: 34",
    ],
    "broadcast_timeout": [
        "org.apache.spark.SparkException: Could not execute broadcast in 300 secs. You can increase the timeout for "
        "broadcasts via spark.sql.broadcastTimeout or disable broadcast join by setting "
        "spark.sql.autoBroadcastJoinThreshold to -1",
        "java.util.concurrent.TimeoutException: Futures timed out after [300 seconds]",
        "org.apache.spark.SparkException: Cannot broadcast the table that is larger than 8GB: 9 GB",
    ],
    "sql_analysis_error": [
        "Cannot safely cast 'update_timestamp': string to bigint",
        "User-defined partition column subq.c1 not found in the JDBC relation: struct<c0: int>",
        "java.sql.SQLSyntaxErrorException: You have an error in your SQL syntax",
        "Error: com.github.housepower.jdbc.ClickHouseSQLException: DB::Exception: Syntax error: failed at",
        "Error in query: cannot resolve '`foo`' given input columns: [a, b]; line 1 pos 7",
        "A column or function parameter with name `user_id` cannot be resolved. Did you mean one of the following?",
        "The table or view `db`.`t` cannot be found. Verify the spelling and correctness of the schema and catalog.",
        "Error in query: Undefined function: 'foo'. This function is neither a registered temporary function nor a",
        "FAILED: SemanticException [Error 10004]: Line 1:7 Invalid table alias or column reference 'x'",
        "FAILED: ParseException line 1:7 cannot recognize input near 'FORM' 't' '<EOF>' in select clause",
        "[INCOMPATIBLE_COLUMN_TYPE] UNION can only be performed on tables with compatible column types.",
        "[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column or function parameter with name `amount` cannot be resolved.",
        "pyspark.errors.exceptions.captured.AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] The table or view "
        "`sales`.`daily` cannot be found.",
        "org.apache.spark.sql.AnalysisException: cannot resolve 'amount' given input columns: [id, total]",
        "org.apache.spark.sql.AnalysisException: Table or view not found: staging.customer_delta; line 1 pos 14",
        "org.apache.spark.sql.catalyst.parser.ParseException:",
        "[PARSE_SYNTAX_ERROR] Syntax error at or near 'FROM'.(line 3, pos 2)",
    ],
    "executor_lost": [
        "15/12/30 09:58:13 INFO YarnClientSchedulerBackend: Asked to remove non-existent executor 8",
        "23/05/04 10:05:01 WARN TaskSetManager: Lost task 3.0 in stage 4.0 (TID 41) (ip-10-0-1-23.ec2.internal "
        "executor 2): ExecutorLostFailure (executor 2 exited caused by one of the running tasks) Reason: "
        "Container killed by YARN for exceeding physical memory limits.",
        "ExecutorLostFailure (executor 7 exited unrelated to the running tasks) Reason: Container marked as failed",
        "23/05/04 10:05:00 ERROR YarnScheduler: Lost executor 2 on ip-10-0-1-23.ec2.internal: Container killed by "
        "YARN for exceeding memory limits",
        "Executor heartbeat timed out after 130023 ms",
        "23/05/04 10:05:00 WARN HeartbeatReceiver: Removing executor 5 with no recent heartbeats: 160000 ms "
        "exceeds timeout 120000 ms",
        "Lost task 0.3 in stage 0.0 (TID 7, kafka.cds.softlayer.com): ExecutorLostFailure (executor 0 lost)",
    ],
    "max_executor_failures": [
        "21/04/12 22:09:02 INFO ApplicationMaster: Final app status: FAILED, exitCode: 11, (reason: Max number of "
        "executor failures (6) reached)",
    ],
    "shuffle_fetch_failed": [
        "org.apache.spark.SparkException: Job aborted due to stage failure: Fetch failure will not retry stage "
        "due to testing config",
        "org.apache.spark.shuffle.FetchFailedException: Failed to connect to ip-10-0-7-7.ec2.internal/10.0.7.7:7337",
        "FetchFailed(BlockManagerId(22, ip-172-31-40-6.ec2.internal, 7337, None), shuffleId=4, mapId=11, "
        "reduceId=3, message=",
        "org.apache.spark.shuffle.MetadataFetchFailedException: Missing an output location for shuffle 171 partition 0",
        "ERROR RetryingBlockFetcher: Exception while beginning fetch of 13 outstanding blocks (after 3 retries)",
        "java.lang.RuntimeException: Executor is not registered (appId=application_1_0001, execId=7)",
    ],
    "network_error": [
        "TaskCompletionListenerException: Connection error (check network and/or proxy settings)- all nodes failed",
        "com.datastax.driver.core.exceptions.NoHostAvailableException: All host(s) tried for query failed",
        'java.io.EOFException: End of File Exception between local host is: "a/10.0.0.7"; destination host is: "b"',
        "socket.timeout: timed out",
        "requests.exceptions.ReadTimeout: HTTPConnectionPool(host='livy', port=8998): Read timed out.",
        "http.client.RemoteDisconnected: Remote end closed connection without response",
        "socket.gaierror: [Errno -2] Name or service not known",
        "OSError: [Errno 113] No route to host",
        "java.net.UnknownHostException: metastore.internal: Temporary failure in name resolution",
        "org.apache.http.NoHttpResponseException: es-node-1:9200 failed to respond",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        "urllib3.exceptions.MaxRetryError: HTTPConnectionPool(host='livy', port=8998): Max retries exceeded",
        "\tError sending http request and maximum retry encountered..",
        "Caused by: java.net.ConnectException: Connection refused (Connection refused)",
        "java.io.IOException: Connection reset by peer",
        "com.amazonaws.SdkClientException: Unable to execute HTTP request: Timeout waiting for connection from pool",
        "org.apache.spark.rpc.RpcTimeoutException: Futures timed out after [120 seconds]. This timeout is "
        "controlled by spark.rpc.askTimeout",
        "java.net.UnknownHostException: reporting-db.internal.acme.com",
        "java.net.BindException: Address already in use: Service 'sparkDriver' failed after 16 retries (on a "
        "random free port)!",
    ],
    "python_error": [
        "Job execution failed, please check complete logs in configured logging destination. ExitCode: 1. "
        "Last few exceptions: IndentationError: unexpected indent",
        "Traceback (most recent call last):",
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):",
        "  An exception was thrown from the Python worker. Please see the stack trace below.",
        "org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)",
    ],
    "sparkcontext_init_failed": [
        "19/01/07 16:48:07 ERROR SparkContext: Error initializing SparkContext.",
        "org.apache.spark.SparkException: Yarn application has already ended! It might have been killed or unable "
        "to launch application master.",
        "20/06/18 09:15:42 INFO ApplicationMaster: Final app status: FAILED, exitCode: 13, (reason: Uncaught "
        "exception: java.util.concurrent.TimeoutException: Futures timed out after [100000 milliseconds])",
        "22/12/09 20:11:03 INFO ApplicationMaster: Final app status: UNDEFINED, exitCode: 16, (reason: Shutdown "
        "hook called before final status was reported.)",
    ],
    "driver_disassociated": [
        "22/12/01 04:12:52 ERROR CoarseGrainedExecutorBackend: Executor self-exiting due to : Driver "
        "ip-10-0-1-5.ec2.internal:37501 disassociated! Shutting down.",
    ],
    "spark_job_aborted": [
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 3 in stage 4.0 failed 4 times, "
        "most recent failure: Lost task 3.3 in stage 4.0 (TID 57)",
        "23/05/04 10:05:02 ERROR TaskSetManager: Task 3 in stage 4.0 failed 4 times; aborting job",
        "23/12/01 21:12:40 ERROR FileFormatWriter: Aborting job 1c0a5a2d-7b8e-4c6a-9a55-2b0f0f6d3e11.",
        "15/05/09 10:21:58 INFO DAGScheduler: Job 0 failed: collect at LogQuery.scala:87, took 41.312190 s",
    ],
    "application_failed": [
        'Exception in thread "main" java.lang.IllegalStateException: no partitions for 2023-05-04',
        "23/05/04 10:05:03 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15, (reason: User class "
        "threw exception: java.lang.RuntimeException: boom)",
        "23/05/04 10:05:02 ERROR ApplicationMaster: User class threw exception: java.lang.RuntimeException: boom",
        "2023-05-04T10:05:04.123Z INFO Step failed with exitCode 1 and took 35 seconds",
        "Job execution failed, please check complete logs in configured logging destination. ExitCode: 1. Last "
        "few exceptions: IndentationError: unexpected indent",
    ],
    "yarn_application_failed": [
        "Diagnostics: Exception from container-launch.",
        "23/01/01 00:00:00 ERROR YarnClientSchedulerBackend: YARN application has exited unexpectedly with state "
        "FAILED! Check the YARN application logs for more details.",
        "23/01/01 00:00:00 INFO LoggingPodStatusWatcherImpl: Application status for spark-4f2a (phase: Failed)",
        'Exception in thread "main" org.apache.spark.SparkException: Application application_1683190000000_0007 '
        "finished with failed status",
        "23/05/04 10:05:03 ERROR ApplicationMaster: User application exited with status 1",
        "\t final status: FAILED",
        "23/05/04 10:05:03 INFO Client: Application report for application_1683190000000_0007 (state: FAILED)",
        "2018-11-26 12:11:55,490 INFO org.apache.hadoop.yarn.server.resourcemanager.rmapp.attempt.RMAppAttemptImpl: "
        "appattempt_1543187098835_0006_000001 State change from FINAL_SAVING to FAILED on event = ATTEMPT_UPDATE_SAVED",
        "\t diagnostics: Application application_1678860000000_0031 failed 2 times due to AM Container for "
        "appattempt_1678860000000_0031_000002 exited with  exitCode: 1",
        "23/05/04 10:05:04 ERROR Client: Application diagnostics message: User application exited with status 1",
        "org.apache.spark.SparkException: Job 2 cancelled because SparkContext was shut down",
    ],
    "hive_session_metastore_frames": [
        'pyspark.sql.utils.IllegalArgumentException: "Error while instantiating '
        "'org.apache.spark.sql.hive.HiveSessionStateBuilder':\"",
        "java.lang.IllegalArgumentException: Error while instantiating "
        "'org.apache.spark.sql.hive.HiveExternalCatalog':",
    ],
    "job_tool_says_failed": [
        "run failed with error message",
        "java.lang.IllegalStateException: Session is in state error",
        "    JVM is not ready after 10 seconds",
        "  Failed while connecting to sparklyr to port (8880): Gateway in localhost:8880 did not respond.",
        "  Failed to launch Spark shell. Ports file does not exist.",
        "2022-06-23 02:15:40.228 | INFO | feathr:wait_for_completion:176 - Current Spark job status: dead",
        '"message": "Spark job failed, batch id:0. Please follow the links in the activity run",',
        "spark-pi-1490326341602   0/1       Error       0          1h",
        "Google Cloud Dataproc Agent reports job failure.",
        "Driver received SIGTERM/SIGKILL signal and exited with 143 code, which potentially signifies",
        "FAILED: Execution Error, return code 2 from org.apache.hadoop.hive.ql.exec.mr.MapRedTask",
        "15/04/06 22:30:47 ERROR exec.Task: Ended Job = job_1427108893685_8230 with errors",
        "FAILED: SemanticException Failed to get a spark session: org.apache.hadoop.hive.ql.metadata.HiveException: "
        "Failed to create Spark client for Spark session 1b4b6a16",
        "\tSession 0 unexpectedly reached final status 'error'. See logs:",
        "Invalid status code '400' from https://livy:8998/sessions/3/statements/17 with error payload: \"requirement "
        "failed: Session isn't active\"",
        "Invalid status code '404' from http://livy:8998/sessions/824/statements/39 with error payload: \"Session "
        "'824' not found.\"",
        '            "state": "SUBMISSION_FAILED"',
        '"errorMessage": "failed to run spark-submit for SparkApplication default/etl: exit status 1",',
        "ERROR: The Spark job failed to start due to an error in the driver",
        "ERROR: (gcloud.dataproc.jobs.submit.pyspark) Job [38fe2b2b5b92] failed with error:",
        "org.apache.kyuubi.KyuubiSQLException: Timeout(180000 ms, you can modify "
        "kyuubi.session.engine.initialize.timeout)",
        "15/04/06 22:30:48 INFO impl.YarnClientImpl: Killed application application_1427108893685_8230",
    ],
    "mapreduce_job_failed": [
        "15/03/26 21:47:05 INFO mapreduce.Job: Job job_1427418278269_0006 failed with state FAILED due to: Task "
        "failed task_1427418278269_0006_m_000000",
        "15/03/26 21:47:05 ERROR streaming.StreamJob: Job not Successful!",
        "Streaming Command Failed!",
    ],
    "jvm_native_crash": [
        "# A fatal error has been detected by the Java Runtime Environment:",
        "*** Error in `/usr/jdk64/current/bin/java': double free or corruption (fasttop): 0x000055b1677232d0 ***",
    ],
    "unknown_exception": [
        # after Py4J's ": ", pytest's "E   ", in a lost task's "(message)", as an ERROR record's message
        ": org.apache.spark.sql.delta.DeltaUnsupportedOperationException: Cannot perform Merge",
        "E   org.apache.iceberg.exceptions.CommitFailedException: Cannot commit table",
        "java.lang.IllegalStateException (Already closed files for partition: p=1) [duplicate 6]",
        "23/03/20 23:16:42 ERROR TaskExecutionServiceImpl: org.apache.hudi.exception.HoodieCompactionException: Could",
        "java.lang.NullPointerException",
        "scala.MatchError: Some() (of class scala.Some)",
        "Caused by: org.apache.hadoop.yarn.exceptions.YarnException: Failed to submit application_1680484062426_0005",
        "ml.dmlc.xgboost4j.java.XGBoostError: XGBoostModel training failed",
        "Error: java.io.IOException: File copy failed: hdfs://nn:8020/in/a -> webhdfs://nn2/out/a",
        # java.lang's own, bare, and one pasted as a quote
        "java.lang.Error: org.apache.hadoop.yarn.exceptions.InvalidAuxServiceException: The auxService:x is missing",
        ">java.io.IOException: No secret manager configured for token authentication",
    ],
    "error_line": [
        "ERROR: (gcloud.dataproc.batches.submit.pyspark) NOT_FOUND: Method not found.",
        "<console>:12: error: not found: value globalScope",
        "error: externally-managed-environment",
        "The code failed because of a fatal error:",
    ],
    "shell_command_failed": [
        "/opt/bitnami/scripts/spark/entrypoint.sh: line 32: exec: driver: not found",
        "deploy/sbin/run_yarn.sh: line 65: /opt/cloudera/parcels/CDH/lib/hadoop/bin/yarn: No such file or directory",
        "/home/hadoop/bin/adam-submit: line 73: gatherSparkSubmitOpts: command not found",
    ],
    "mapreduce_task_attempt_failed": [
        "13/02/24 04:12:06 INFO mapred.JobClient: Task Id : attempt_201302240411_0001_m_000009_0, Status : FAILED",
    ],
    "shuffle_service_not_configured": [
        "java.lang.Error: org.apache.hadoop.yarn.exceptions.InvalidAuxServiceException: The auxService:spark_shuffle "
        "does not exist",
    ],
    "python_exception_line": [
        "E   AttributeError: module 'socketserver' has no attribute 'UnixStreamServer'",
        "Error al iniciar SparkSession: name 'json' is not defined",
        " ValueError: Cannot run multiple SparkContexts at once; existing SparkContext(app=pyspark-shell)",
        "KeyError: 'customer_id'",
    ],
    "python_lost_its_jvm": [
        "py4j.protocol.Py4JNetworkError: Answer from Java side is empty",
        "py4j.protocol.Py4JNetworkError: An error occurred while trying to connect to the Java server (127.0.0.1:4242)",
        "py4j.protocol.Py4JError: An error occurred while calling o41.sql. Trace: py4j.Py4JException: Cannot obtain a "
        "new communication channel",
        "ERROR:py4j.java_gateway:An error occurred while trying to connect to the Java server (127.0.0.1:39103) "
        "py4j.protocol.Py4JNetworkError: Error while receiving",
    ],
    "am_received_sigterm": [
        "23/05/04 10:05:04 ERROR ApplicationMaster: RECEIVED SIGNAL TERM",
    ],
    "application_gave_up": [
        "23/05/04 10:05:04 INFO ApplicationMaster: Unregistering ApplicationMaster with FAILED (diag message: "
        "User class threw exception: java.lang.RuntimeException: boom)",
    ],
    "python_spark_call_failed": [
        "py4j.protocol.Py4JJavaError: An error occurred while calling o93.count.",
    ],
    "application_succeeded": [
        "23/05/04 10:10:01 INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0",
        "2024-06-19T01:15:13.552Z INFO Step succeeded with exitCode 0 and took 912 seconds",
        "\t final status: SUCCEEDED",
        "23/05/04 10:10:01 INFO ApplicationMaster: Unregistering ApplicationMaster with SUCCEEDED",
        "2024-06-09 17:40:03,140 INFO org.apache.hadoop.mapreduce.Job: Job job_1717955085543_0001 completed "
        "successfully",
    ],
    "python_traceback_tail": [
        '  File "/mnt/tmp/spark-2b3c/partner_feed.py", line 64, in load_partner_config',
        'File "/home/hadoop/jobs/enrich.py", line 12, in <lambda>',
    ],
    "spark_job_finished": [
        "23/05/04 10:08:01 INFO DAGScheduler: Job 6 finished: save at Sessionize.scala:54, took 571.212 s",
        "2024-05-14 02:01:44,118 INFO scheduler.DAGScheduler: Job 0 finished: count at job.py:12, took 3.1 s",
    ],
}

# Lines a rule must not take as evidence: real false positives (failure-signatures §4.14) and near misses.
NOT_EVIDENCE: list[tuple[str, str]] = [
    # Pig's notice that it will not write a _SUCCESS file on a file system it has no client for
    (
        "dependency_conflict",
        "2015-02-06 15:16:16,440 [main] WARN  org.apache.pig.backend.hadoop.executionengine.mapReduceLayer."
        "MapReduceLauncher - No FileSystem for scheme: wasb. Not creating success file",
    ),
    # What the JVM says when the Python worker it talks to crashed: a consequence, not the network
    ("network_error", "Caused by: java.net.SocketException: Connection reset"),
    ("network_error", "java.net.SocketException: Broken pipe (Write failed)"),
    # Prose and counters around a paste, records of other levels, JSON: not an error line
    ("error_line", "This means that connection failed and lost some data in this process."),
    ("error_line", "\t\tFailed Shuffles=0"),
    ("error_line", "[04:03:27,683] WARN  {NativeCodeLoader} failed: no native library"),
    ("error_line", ' Failed Values":true},{"ID":2,"Name":"internal.metrics.executorDeserializeCpuTime"'),
    ("shell_command_failed", "line 32: the step failed"),
    (
        "oom_heap",
        "23/05/04 10:00:01 WARN Client: launching with '-XX:OnOutOfMemoryError=kill -9 %p' -XX:+ExitOnOutOfMemoryError",
    ),
    (
        "oom_heap",
        'exec /bin/bash -c "LD_LIBRARY_PATH=/usr/lib/hadoop/lib/native {{JAVA_HOME}}/bin/java -server '
        "-Xmx4743m '-XX:OnOutOfMemoryError=kill %p' -XX:+HeapDumpOnOutOfMemoryError "
        'org.apache.spark.executor.YarnCoarseGrainedExecutorBackend"',
    ),
    ("oom_heap", "ValueError: MemoryError is not raised here"),
    (
        "node_lost_spot",
        "23/05/04 10:10:00 INFO YarnAllocator: Completed container container_1683190000000_0008_01_000003"
        " on host: ip-10-0-1-23.ec2.internal (state: COMPLETE, exit status: 143)",
    ),
    ("node_lost_spot", "Exit status: -1000"),
    ("yarn_memory_kill", "Container killed on request. Exit code is 143"),
    (
        "executor_lost",
        "23/05/04 10:10:00 INFO ExecutorAllocationManager: Removing executor 2 because it has been "
        "idle for 60 seconds (new desired total will be 1)",
    ),
    ("application_failed", "23/05/04 10:10:01 INFO ApplicationMaster: Final app status: SUCCEEDED, exitCode: 0"),
    ("application_failed", "2023-05-04T10:10:04.123Z INFO Step succeeded with exitCode 0 and took 35 seconds"),
    ("application_failed", "23/05/04 10:10:01 INFO ApplicationMaster: User application exited with status 0"),
    ("application_failed", "\t final status: UNDEFINED"),
    ("application_succeeded", "23/05/04 10:10:01 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15"),
    ("application_succeeded", "\t final status: FAILED"),
    ("application_gave_up", "23/05/04 10:10:01 INFO ApplicationMaster: Unregistering ApplicationMaster with SUCCEEDED"),
    (
        "network_error",
        "ERROR TransportResponseHandler: Still have 1 requests outstanding when connection from "
        "ip-10-1-2-11.ec2.internal/10.1.2.11:7337 is closed",
    ),
    ("dependency_conflict", 'SLF4J: Failed to load class "org.slf4j.impl.StaticLoggerBinder".'),
    ("disk_full", "23/05/04 10:05:00 INFO UnsafeExternalSorter: Thread 75 spilling sort data of 768.0 MiB to disk"),
    (
        "python_error",
        "24/01/22 10:31:40 WARN TaskSetManager: Lost task 0.0 in stage 1.0 (TID 1) (ip-10-6-3-70.ec2.internal "
        "executor 2): org.apache.spark.api.python.PythonException: Traceback (most recent call last):",
    ),
    ("container_sigkill_137", "Container killed on request. Exit code is 143"),
    ("container_sigkill_137", "Container exited with a non-zero exit code 1370"),
    ("s3_access_denied", "(Service: AWSGlue; Status Code: 400; Error Code: AccessDeniedException; Request ID: 1)"),
    ("permission_denied", "User: arn:aws:sts::1:assumed-role/R/i-0 is not authorized to perform: s3:GetObject"),
    ("broadcast_timeout", "java.util.concurrent.TimeoutException: Futures timed out after [100000 milliseconds]"),
    ("sparkcontext_init_failed", "23/05/04 10:10:01 INFO ApplicationMaster: Final app status: FAILED, exitCode: 15"),
    ("application_killed", "\t final status: SUCCEEDED"),
]

# A stack frame naming an exception class is not the exception itself (dbx-an test_frame_line_is_never_a_header).
FRAME_GUARDS: list[tuple[str, str]] = [
    ("oom_heap", "\tat java.lang.OutOfMemoryError.<init>(OutOfMemoryError.java:48)"),
    ("sql_analysis_error", "\tat com.acme.errors.AnalysisExceptionMapper.map(AnalysisExceptionMapper.java:12)"),
    ("dependency_conflict", "\tat com.acme.compat.java.lang.NoSuchMethodErrorHandler.handle(Handler.java:9)"),
    ("class_not_found", "\tat com.acme.loader.ClassNotFoundExceptionTranslator.apply(Translator.java:31)"),
    ("output_already_exists", "\tat org.apache.hadoop.fs.FileAlreadyExistsException.<init>(FAEE.java:38)"),
    ("data_corruption", "\tat org.apache.parquet.io.ParquetDecodingException.<init>(PDE.java:27)"),
    ("kerberos_auth", "\tat org.ietf.jgss.GSSException.<init>(GSSException.java:212)"),
    (
        "shuffle_fetch_failed",
        "\tat org.apache.spark.shuffle.FetchFailedException.<init>(FetchFailedException.scala:60)",
    ),
]


def _yaml_rule(rule_id: str = "acme_quota", **overrides: str) -> str:
    fields = {
        "id": rule_id,
        "category": "acme_quota",
        "kind": "cause",
        "rank": "25",
        "severity": "high",
        "retryable": "true",
        "title": "The Acme quota service refused the job",
        "patterns": "['AcmeQuotaExceededException']",
        "explanation": "The job used more than its daily Acme quota.",
        "remediation": "Ask the Acme team for more quota or rerun tomorrow.",
        **overrides,
    }
    first, *rest = [f"{name}: {value}" for name, value in fields.items() if value != "<omit>"]
    return "  - " + first + "\n" + "".join(f"    {line}\n" for line in rest)


def _rules_file(tmp_path: Path, body: str, name: str = "acme-rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------
# The shipped catalogue
# ---------------------------------------------------------------------------------------------------
def test_shipped_catalogue_loads_with_unique_ids_and_complete_rules(catalogue: Catalogue) -> None:
    # Given the catalogue shipped in the layer
    # When it is loaded (the fixture)
    ids = [rule.id for rule in catalogue.rules]
    # Then it has a version, unique ids, and every rule has patterns and words for the on-call engineer
    assert catalogue.version == "2026.12.1"
    assert len(ids) == len(set(ids)) >= 10
    for rule in catalogue.rules:
        assert rule.patterns, rule.id
        assert all(pattern.strip() for pattern in rule.patterns), rule.id
        assert len(rule.remediation.strip()) > 10, rule.id
        assert len(rule.explanation.strip()) > 10, rule.id
        assert rule.severity in {"critical", "high", "medium", "low"}, rule.id


def test_symptom_rules_rank_after_every_cause(catalogue: Catalogue) -> None:
    # Given the shipped rules
    causes = [r.rank for r in catalogue.rules if r.kind == "cause"]
    symptoms = [r for r in catalogue.rules if r.kind == "symptom"]
    # Then symptoms exist, are reported as `other`, and rank after every cause
    # (YARN's own words that the application failed are `app_killed_or_am_failed`; an error no rule
    # knows, shown with the failure, is `other`)
    assert {r.id: r.category for r in symptoms} == {
        "spark_job_aborted": "other",
        "application_failed": "other",
        "python_spark_call_failed": "other",
        "mapreduce_job_failed": "other",
        "unknown_exception": "other",
        "error_line": "other",
        "mapreduce_task_attempt_failed": "other",
        "yarn_application_failed": "app_killed_or_am_failed",
        "am_received_sigterm": "app_killed_or_am_failed",
        "job_tool_says_failed": "app_killed_or_am_failed",
        "application_gave_up": "app_killed_or_am_failed",
    }
    assert all(r.retryable is None for r in symptoms)
    assert min(r.rank for r in symptoms) > max(causes)


def test_every_shipped_rule_has_examples_here(catalogue: Catalogue) -> None:
    # Given the shipped rules and this file's real-world examples
    # Then a new rule cannot ship without an example line in this test
    assert set(EXAMPLES) == {rule.id for rule in catalogue.rules}


@pytest.mark.parametrize(
    ("rule_id", "line"),
    [(rule_id, line) for rule_id, lines in EXAMPLES.items() for line in lines],
    ids=[f"{rule_id}-{n}" for rule_id, lines in EXAMPLES.items() for n in range(len(lines))],
)
def test_shipped_rule_matches_real_wording(catalogue: Catalogue, rule_id: str, line: str) -> None:
    # Given a line worded the way Spark, YARN or EMR word it
    rule = catalogue.get(rule_id)
    assert rule is not None
    # When the rule is applied
    # Then it takes the line as evidence
    assert rule.matches(line)


@pytest.mark.parametrize(
    ("rule_id", "line"), NOT_EVIDENCE, ids=[f"{rule_id}-{n}" for n, (rule_id, _) in enumerate(NOT_EVIDENCE)]
)
def test_shipped_rule_ignores_known_false_positives(catalogue: Catalogue, rule_id: str, line: str) -> None:
    # Given a line that looks like, but is not, evidence of the rule
    rule = catalogue.get(rule_id)
    assert rule is not None
    # Then the rule does not take it
    assert not rule.matches(line)


@pytest.mark.parametrize(("rule_id", "line"), FRAME_GUARDS, ids=[rule_id for rule_id, _ in FRAME_GUARDS])
def test_stack_frame_with_an_exception_class_name_is_not_evidence(
    catalogue: Catalogue, rule_id: str, line: str
) -> None:
    # Given a stack frame whose class name contains the rule's exception name
    rule = catalogue.get(rule_id)
    assert rule is not None
    # Then the pattern alone would match it, but the guard rejects it
    assert rule.matcher.search(line) is not None
    assert rule.guard is not None
    assert not rule.matches(line)


def test_oom_flags_in_a_launch_command_are_rejected_by_the_guard(catalogue: Catalogue) -> None:
    # Given a JVM launch command that carries both the OOM flags and an OOM class reference
    line = (
        "YarnAllocator: Launching container with command: java -Xmx4g '-XX:OnOutOfMemoryError=kill -9 %p' "
        "-Dspark.oom.class=java.lang.OutOfMemoryError"
    )
    rule = catalogue.get("oom_heap")
    assert rule is not None
    # Then the flag guard keeps it from being an OOM
    assert rule.matcher.search(line) is not None
    assert not rule.matches(line)


def test_emr_reasons_load(catalogue: Catalogue) -> None:
    # Given EMR's own cluster reason codes in the catalogue
    reasons = catalogue.emr_reasons
    # Then the codes EMR sends are known, with a category and advice
    assert {
        "BOOTSTRAP_FAILURE",
        "INSTANCE_FAILURE",
        "INSTANCE_FLEET_TIMEOUT",
        "VALIDATION_ERROR",
        "INTERNAL_ERROR",
        "STEP_FAILURE",
    } <= set(reasons)
    bootstrap = reasons["BOOTSTRAP_FAILURE"]
    assert bootstrap.category == "bootstrap_failure"
    assert bootstrap.retryable is False
    assert "bootstrap-actions" in bootstrap.remediation
    assert reasons["INSTANCE_FAILURE"].category == "node_lost_spot"
    assert reasons["INSTANCE_FAILURE"].retryable is True


def test_get_of_an_unknown_id_is_none(catalogue: Catalogue) -> None:
    assert catalogue.get("no_such_rule") is None


# ---------------------------------------------------------------------------------------------------
# Users' rules files
# ---------------------------------------------------------------------------------------------------
def test_user_file_adds_a_rule_and_overrides_an_existing_id(tmp_path: Path, catalogue: Catalogue) -> None:
    # Given a user file with a new rule and a replacement for oom_heap
    body = (
        "version: 3\nrules:\n"
        + _yaml_rule()
        + _yaml_rule("oom_heap", category="oom_heap", title="'Acme: heap exhausted'", patterns="['AcmeHeapGone']")
        + "emr_reasons:\n  ACME_REASON:\n    category: other\n    severity: low\n    retryable: null\n"
        "    title: Acme reason\n    remediation: Ask Acme.\n"
    )
    path = _rules_file(tmp_path, body)
    # When the catalogue is loaded with it
    merged = load_catalogue([path])
    # Then the new rule is added at the end, and oom_heap is replaced in place
    assert [r.id for r in merged.rules] == [*(r.id for r in catalogue.rules), "acme_quota"]
    added = merged.get("acme_quota")
    assert added is not None
    assert added.matches("com.acme.AcmeQuotaExceededException: quota of 100 jobs reached")
    replaced = merged.get("oom_heap")
    assert replaced is not None
    assert replaced.title == "Acme: heap exhausted"
    assert replaced.matches("AcmeHeapGone")
    assert not replaced.matches("java.lang.OutOfMemoryError: Java heap space")
    # And its version says which files made it, and EMR reasons are merged
    assert merged.version == "2026.12.1+acme-rules@3"
    assert "ACME_REASON" in merged.emr_reasons
    assert "BOOTSTRAP_FAILURE" in merged.emr_reasons


def test_rule_not_patterns_and_case_sensitivity_from_a_user_file(tmp_path: Path) -> None:
    # Given a case-sensitive user rule with a guard
    body = "version: 1\nrules:\n" + _yaml_rule(
        patterns="['QuotaExceeded']", not_patterns="['^\\s+at\\s']", ignore_case="false"
    )
    rule = load_catalogue([_rules_file(tmp_path, body)]).get("acme_quota")
    assert rule is not None
    # Then it matches the exact case only, and never a stack frame
    assert rule.matches("ERROR QuotaExceeded for tenant 7")
    assert not rule.matches("ERROR quotaexceeded for tenant 7")
    assert not rule.matches("\tat com.acme.QuotaExceeded.check(QuotaExceeded.java:3)")


@pytest.mark.parametrize(
    ("rule_overrides", "expected"),
    [
        pytest.param(
            {"patterns": "['AcmeQuota(Exceeded']"},
            r"rule 'acme_quota': patterns\[1\] 'AcmeQuota\(Exceeded' is not a valid regular expression: "
            r"missing \), unterminated subpattern",
            id="invalid-regex",
        ),
        pytest.param(
            {"not_patterns": "['[unclosed']"},
            r"rule 'acme_quota': not_patterns\[1\] '\[unclosed' is not a valid regular expression",
            id="invalid-guard-regex",
        ),
        pytest.param(
            {"remediation": "<omit>"},
            r"rule 'acme_quota': remediation: Field required",
            id="missing-field",
        ),
        pytest.param(
            {"colour": "red"},
            r"rule 'acme_quota': colour: Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            {"severity": "urgent"},
            r"rule 'acme_quota': severity: Input should be 'critical', 'high', 'medium' or 'low'",
            id="bad-severity",
        ),
        pytest.param(
            {"patterns": "[]"},
            r"rule 'acme_quota': patterns: List should have at least 1 item",
            id="no-patterns",
        ),
        pytest.param(
            {"kind": "hunch"},
            r"rule 'acme_quota': kind: Input should be 'cause', 'symptom' or 'success'",
            id="bad-kind",
        ),
        pytest.param(
            {"rank": "5000"},
            r"rule 'acme_quota': rank: Input should be less than or equal to 1000",
            id="rank-out-of-range",
        ),
        pytest.param(
            {"id": "Acme-Quota"},
            r"rule 'Acme-Quota': id: String should match pattern",
            id="bad-id",
        ),
    ],
)
def test_bad_rule_is_rejected_naming_file_rule_and_problem(
    tmp_path: Path, rule_overrides: dict[str, str], expected: str
) -> None:
    # Given a user file with one bad rule
    path = _rules_file(tmp_path, "version: 1\nrules:\n" + _yaml_rule(**rule_overrides))
    # When the catalogue is loaded with it
    with pytest.raises(CatalogueError) as caught:
        load_catalogue([path])
    # Then the error names the file, the rule and the problem
    message = str(caught.value)
    assert message.startswith(f"rules file {path}: ")
    assert re.search(expected, message), message


def test_missing_rule_id_is_named_by_position(tmp_path: Path) -> None:
    # Given a second rule without an id
    body = "version: 1\nrules:\n" + _yaml_rule() + _yaml_rule("<omit>")
    # When it is loaded
    with pytest.raises(CatalogueError, match=r"rule '#2': id: Field required"):
        load_catalogue([_rules_file(tmp_path, body)])


def test_duplicate_id_in_one_file_is_rejected(tmp_path: Path) -> None:
    # Given a file defining the same id twice
    body = "version: 1\nrules:\n" + _yaml_rule() + _yaml_rule(title="Second definition")
    path = _rules_file(tmp_path, body)
    # When it is loaded
    # Then the error names the rule and says it is defined twice
    with pytest.raises(
        CatalogueError, match=rf"^rules file {re.escape(str(path))}: rule 'acme_quota' is defined twice$"
    ):
        load_catalogue([path])


def test_invalid_yaml_is_rejected(tmp_path: Path) -> None:
    # Given a file that is not YAML
    path = _rules_file(tmp_path, "version: 1\nrules:\n  - id: [unclosed\n")
    # When it is loaded
    with pytest.raises(CatalogueError, match=rf"^rules file {re.escape(str(path))}: not valid YAML: "):
        load_catalogue([path])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("", "file: Input should be a valid dictionary", id="empty-file"),
        pytest.param("rules: []\n", "version: Field required", id="no-version"),
        pytest.param("version: 1\nrules: {a: 1}\n", "rules: Input should be a valid list", id="rules-not-a-list"),
        pytest.param("version: 1\nrules: []\nextras: 1\n", "extras: Extra inputs are not permitted", id="unknown-key"),
        pytest.param(
            "version: 1\nrules:\n  - just text\n", "rules.0: Input should be a valid dictionary", id="rule-text"
        ),
    ],
)
def test_badly_shaped_file_is_rejected(tmp_path: Path, body: str, expected: str) -> None:
    # Given a YAML file of the wrong shape
    path = _rules_file(tmp_path, body)
    # When it is loaded
    with pytest.raises(CatalogueError) as caught:
        load_catalogue([path])
    # Then the error says what shape is expected and what is wrong
    assert "expected 'version', a list of 'rules' and optional 'emr_reasons'" in str(caught.value)
    assert expected in str(caught.value)


# A folder is a valid rules source since rules folders are supported (see test_custom_rules.py).
@pytest.mark.parametrize("name", ["missing.yaml", "missing-folder/rules.yaml"], ids=["missing", "missing-folder"])
def test_unreadable_rules_path_is_rejected(tmp_path: Path, name: str) -> None:
    # Given a path that cannot be read as a file
    path = tmp_path / name
    # When it is loaded
    with pytest.raises(CatalogueError, match=rf"^rules file {re.escape(str(path))}: cannot be read \(.+\)$"):
        load_catalogue([path])


@pytest.mark.parametrize(
    "patterns",
    [
        "['(?i)acmequotaexceeded']",
        "['(?P<n>\\d+) AcmeQuotaExceeded', '(?P<n>\\d+) AcmeQuotaRefused']",
    ],
    ids=["inline-global-flag", "repeated-group-name"],
)
def test_patterns_valid_alone_are_usable_together(tmp_path: Path, patterns: str) -> None:
    # Given a user rule whose patterns each compile on their own
    path = _rules_file(tmp_path, "version: 1\nrules:\n" + _yaml_rule(patterns=patterns))

    # When it is loaded and applied to a line
    def load_and_match() -> bool:
        rule = load_catalogue([path]).get("acme_quota")
        assert isinstance(rule, Rule)
        return rule.matches("12 AcmeQuotaExceeded")

    # Then it either works, or is refused at load time naming the rule; never a raw re.error mid-analysis
    try:
        accepted_and_working = load_and_match()
    except CatalogueError as exc:
        accepted_and_working = "acme_quota" in str(exc)
    assert accepted_and_working is True
