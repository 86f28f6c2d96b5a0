      *****************************************************************
      * CUSTMAST - CUSTOMER MASTER RECORD (RECFM=FB, LRECL=125)
      *****************************************************************
000100 01  CUSTMAST-REC.                                                CUSTMAST
000200     05  CUST-ID                 PIC 9(8).                        CUSTMAST
000300     05  CUST-NAME.                                               CUSTMAST
000400         10  LAST-NAME           PIC X(20).                       CUSTMAST
000500         10  FIRST-NAME          PIC X(15).                       CUSTMAST
000600     05  BIRTH-DATE              PIC 9(8).                        CUSTMAST
000700     05  BIRTH-DATE-R REDEFINES BIRTH-DATE.                       CUSTMAST
000800         10  BIRTH-YYYY          PIC 9(4).                        CUSTMAST
000900         10  BIRTH-MMDD          PIC 9(4).                        CUSTMAST
001000     05  BALANCE                 PIC S9(7)V99 COMP-3.             CUSTMAST
001100     05  CREDIT-LIMIT            PIC S9(5)V99 USAGE COMP-3.       CUSTMAST
001200     05  ORDER-COUNT             PIC S9(4) COMP.                  CUSTMAST
001300     05  LAST-PAYMENT            PIC S9(5)V99.                    CUSTMAST
001400     05  PHONES OCCURS 2 TIMES.                                   CUSTMAST
001500         10  PHONE-TYPE          PIC X.                           CUSTMAST
001600             88  PHONE-HOME      VALUE 'H'.                       CUSTMAST
001700             88  PHONE-WORK      VALUE 'W'.                       CUSTMAST
001800         10  PHONE-NUMBER        PIC X(15).                       CUSTMAST
001900     05  HOME-ADDR.                                               CUSTMAST
002000         10  CITY                PIC X(10).                       CUSTMAST
002100     05  WORK-ADDR.                                               CUSTMAST
002200         10  CITY                PIC X(10).                       CUSTMAST
002300     05  STATUS-CODE             PIC X VALUE 'A'.                 CUSTMAST
002400     05  FILLER                  PIC X(3).                        CUSTMAST
